-- The request context (src/context.c).

CREATE FUNCTION smartsync.context()
RETURNS jsonb
LANGUAGE c STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'smartsync_context';
COMMENT ON FUNCTION smartsync.context() IS
'the request context as smartsync sees it: tenant (and its schema), practice, user, client, permissions; from request.jwt.claims when set, else from the smartsync.* settings';
