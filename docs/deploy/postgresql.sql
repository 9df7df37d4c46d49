-- The cluster's PostgreSQL database (docs/deploy.md). As a superuser, once:
--   psql -h db.example.net -U postgres -v ON_ERROR_STOP=1 \
--        -v password="$(cat /root/oss-db-password)" -f postgresql.sql
-- (-v role=NAME and -v dbname=NAME change the names; both default to oss). The daemon's
-- migrations (Alembic, at every start) create and upgrade every table, index and function
-- (`oss_fence`, PL/pgSQL) as this owner: it needs no superuser, and nothing is made by hand.
-- Checked against a real server by tests/integration/test_deploy.py.
\if :{?role}
\else
\set role oss
\endif
\if :{?dbname}
\else
\set dbname oss
\endif
CREATE ROLE :"role" LOGIN PASSWORD :'password';
CREATE DATABASE :"dbname" OWNER :"role" ENCODING 'UTF8' TEMPLATE template0;
REVOKE ALL ON DATABASE :"dbname" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE :"dbname" TO :"role";
\connect :"dbname"
ALTER SCHEMA public OWNER TO :"role";
