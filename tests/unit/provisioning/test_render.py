from __future__ import annotations

from pathlib import Path

import pytest

from oss.provisioning.render import Renderer, TemplateError


@pytest.fixture
def renderer(tmp_path: Path) -> Renderer:
    (tmp_path / "lab-sim").mkdir()
    (tmp_path / "lab-sim" / "vrf.xml.j2").write_text(
        '<interfaces xmlns="http://openconfig.net/yang/interfaces">\n'
        "{% for port in ports %}\n"
        "  <interface><name>{{ port.name }}</name>\n"
        "    <config><description>{{ port.description }}</description></config>\n"
        "  </interface>\n"
        "{% endfor %}\n"
        "</interfaces>\n"
    )
    (tmp_path / "lab-sim" / "vrf.cli.j2").write_text(
        "vrf {{ vrf }}\n rd {{ rd }}\n route-target {{ rt }}\n"
    )
    (tmp_path / "lab-sim" / "broken.cli.j2").write_text("vrf {{ vrf }\n")
    (tmp_path / "lab-sim" / "update.json.j2").write_text('{"description": {{ text | tojson }}}\n')
    return Renderer(tmp_path)


def test_renders_with_every_variable(renderer: Renderer) -> None:
    out = renderer.render("lab-sim/vrf.cli.j2", {"vrf": "acme", "rd": "65000:1", "rt": "65000:1"})
    assert out == "vrf acme\n rd 65000:1\n route-target 65000:1\n"


def test_missing_variable_names_template_line_and_variable(renderer: Renderer) -> None:
    with pytest.raises(TemplateError) as err:
        renderer.render("lab-sim/vrf.cli.j2", {"vrf": "acme", "rd": "65000:1"})
    assert str(err.value) == "template lab-sim/vrf.cli.j2:3: 'rt' is undefined"


def test_missing_attribute_inside_a_loop(renderer: Renderer) -> None:
    with pytest.raises(TemplateError, match=r"vrf\.xml\.j2:4: .*'description'"):
        renderer.render("lab-sim/vrf.xml.j2", {"ports": [{"name": "eth1"}]})


def test_xml_values_are_escaped(renderer: Renderer) -> None:
    out = renderer.render(
        "lab-sim/vrf.xml.j2",
        {"ports": [{"name": "eth1", "description": "</description><mtu>1</mtu> & co"}]},
    )
    assert "&lt;/description&gt;&lt;mtu&gt;1&lt;/mtu&gt; &amp; co" in out
    assert "<mtu>" not in out


def test_json_values_stay_json(renderer: Renderer) -> None:
    out = renderer.render("lab-sim/update.json.j2", {"text": 'say "hi" </x>'})
    assert out.startswith('{"description": "say \\"hi\\"')


def test_syntax_error_and_missing_template(renderer: Renderer) -> None:
    with pytest.raises(TemplateError, match=r"broken\.cli\.j2:1: unexpected '}'"):
        renderer.render("lab-sim/broken.cli.j2", {"vrf": "x"})
    with pytest.raises(TemplateError, match=r"nope\.j2: not found"):
        renderer.render("lab-sim/nope.j2", {})


def test_templates_cannot_reach_python_internals(renderer: Renderer, tmp_path: Path) -> None:
    (tmp_path / "lab-sim" / "evil.cli.j2").write_text("{{ ''.__class__.__mro__ }}\n")
    with pytest.raises(TemplateError, match=r"evil\.cli\.j2:1: .*__class__.* unsafe"):
        renderer.render("lab-sim/evil.cli.j2", {})
