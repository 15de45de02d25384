-- Runs once, when the PostgreSQL container initialises an empty data volume
-- (mounted into /docker-entrypoint-initdb.d by docker-compose.yml).
--
-- One database per service: each service owns its database and no other service touches it.
-- The services would also create their database themselves at start if it were missing;
-- creating them here makes the layout explicit. Migrations are applied by the services.

CREATE DATABASE auth;
CREATE DATABASE wallet;
CREATE DATABASE statement;
CREATE DATABASE orders;
