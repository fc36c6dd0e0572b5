-- Administrative functions are not for PUBLIC.
REVOKE ALL ON FUNCTION smartsync.register_entity_type(text, regclass, text[], jsonb, jsonb, text, text, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION smartsync.unregister_entity_type(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION smartsync.provision_tenant(text, name) FROM PUBLIC;
REVOKE ALL ON FUNCTION smartsync._raise(text, text, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION smartsync._sort_entity_types() FROM PUBLIC;
REVOKE ALL ON FUNCTION smartsync._check_schema_name(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION smartsync._create_sync_tables(name) FROM PUBLIC;
REVOKE ALL ON FUNCTION smartsync._untrack_table(name, name) FROM PUBLIC;
REVOKE ALL ON FUNCTION smartsync._track_table(name, text) FROM PUBLIC;
