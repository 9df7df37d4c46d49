"""HTTP conventions the OSS's routes (`oss.api`) and the BSS's (`bss_bridge.api`) share: the
TM Forum API rules (`tmf`: `fields=`, paging headers, the `Error` document). A layer of its own
below `bss_bridge`, so both may import it; it imports only the kernel."""
