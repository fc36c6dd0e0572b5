-- smartsync 0.2.0 -> 0.3.0
\echo Use "ALTER EXTENSION smartsync UPDATE TO '0.3.0'" to load this file. \quit

-- Every change to the extension's SQL objects between 0.2.0 and 0.3.0, one section per
-- change; sql/upgrade.sql checks that an updated 0.2.0 equals a fresh 0.3.0.
