-- Custody's two database roles (docs/operations.md, "Database roles"). Idempotent: run it again after every
-- upgrade, it creates what is missing and puts every grant back to what is written here.
--
--   owner  owns the schema, every table, sequence and trigger function; `manage.py migrate` connects as it.
--   app    what DATABASE_URL connects as: reads and writes rows where the triggers allow it, and nothing else.
--          Not a superuser, owns nothing, cannot bypass row security, cannot create in the schema; so it cannot
--          ALTER a table, DISABLE its triggers, TRUNCATE, DROP, or set session_replication_role (Part 11 §11.10(c)).
--
-- As a superuser, with psql:
--   psql "$ADMIN_URL" -v ON_ERROR_STOP=1 --single-transaction \
--        -v owner=custody_owner -v app=custody_app -f config/database_roles.sql
-- then set the passwords with psql's \password (it sends only a SCRAM verifier, never the password).
-- `manage.py create_database_roles` runs this same file, as the owner, and sets the application role's password.
--
-- The psql variables owner and app are the only input; the command substitutes them the way psql does.

SELECT set_config('custody.owner_role', :'owner', false), set_config('custody.app_role', :'app', false);

DO $roles$
DECLARE
    owner_role text := current_setting('custody.owner_role');
    app_role text := current_setting('custody.app_role');
    append_only text[] := ARRAY[
        -- Written once, never changed or removed: their triggers refuse every UPDATE and DELETE, and so does the
        -- grant (common.table_guards, changecontrol migration 0002).
        'changecontrol_auditevent',
        'changecontrol_auditcheckpoint',
        'approvals_decision',
        'approvals_deployment',
        -- The migration history is the owner's to write.
        'django_migrations'
    ];
    item record;
BEGIN
    IF owner_role = '' OR app_role = '' THEN
        RAISE EXCEPTION 'name both roles (owner and app)';
    END IF;
    IF owner_role = app_role THEN
        RAISE EXCEPTION 'the application role must not be the owner role (both are %)', app_role;
    END IF;
    IF app_role = current_user THEN
        RAISE EXCEPTION 'the application role must not be the role running this (%): name the application''s own role',
            app_role;
    END IF;
    -- A superuser named by mistake (postgres) is refused, never demoted.
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = app_role AND rolsuper) THEN
        RAISE EXCEPTION 'role % is a superuser: the application must connect as a plain role; name another one',
            app_role;
    END IF;

    -- 1. The roles. An existing owner keeps its attributes (in the compose stack it is the container's bootstrap
    --    role); the application role loses any attribute it should not have (that takes a superuser).
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = owner_role) THEN
        EXECUTE format('CREATE ROLE %I LOGIN', owner_role);
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = app_role) THEN
        EXECUTE format('CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS', app_role);
    END IF;
    IF EXISTS (
        SELECT FROM pg_roles WHERE rolname = app_role
        AND (rolcreatedb OR rolcreaterole OR rolreplication OR rolbypassrls OR NOT rolcanlogin)
    ) THEN
        EXECUTE format('ALTER ROLE %I LOGIN NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS', app_role);
    END IF;
    -- The application role must not be able to become the owner (SET ROLE), nor any role that owns a table here.
    IF EXISTS (
        SELECT FROM pg_auth_members m
        WHERE m.member = to_regrole(app_role) AND m.roleid = to_regrole(owner_role)
    ) THEN
        EXECUTE format('REVOKE %I FROM %I', owner_role, app_role);
    END IF;
    IF pg_has_role(app_role, owner_role, 'MEMBER') THEN
        RAISE EXCEPTION 'role % is a member of % through another role: revoke that first', app_role, owner_role;
    END IF;
    FOR item IN
        SELECT DISTINCT pg_get_userbyid(c.relowner) AS holder
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND pg_get_userbyid(c.relowner) <> owner_role
    LOOP
        IF item.holder = app_role THEN
            CONTINUE;  -- its tables are adopted by the owner below
        END IF;
        IF pg_has_role(app_role, item.holder, 'MEMBER') THEN
            RAISE EXCEPTION 'role % is a member of %, which owns tables in this database: revoke that first',
                app_role, item.holder;
        END IF;
    END LOOP;

    -- 2. The database and its schema belong to the owner; nobody else creates in the schema.
    IF (SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()) <> owner_role THEN
        EXECUTE format('ALTER DATABASE %I OWNER TO %I', current_database(), owner_role);
    END IF;
    IF (SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'public')
       NOT IN (owner_role, 'pg_database_owner') THEN
        EXECUTE format('ALTER SCHEMA public OWNER TO %I', owner_role);
    END IF;
    REVOKE CREATE ON SCHEMA public FROM PUBLIC;
    EXECUTE format('REVOKE ALL ON SCHEMA public FROM %I', app_role);
    EXECUTE format('GRANT USAGE ON SCHEMA public TO %I', app_role);
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), app_role);

    -- 3. Adopt what an earlier deployment created as another role (the application's, before the split): tables,
    --    views and free-standing sequences (an identity column's sequence follows its table), and the trigger
    --    functions, which only their owner may replace.
    FOR item IN
        SELECT c.relname AS name,
               CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE'
                              WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END AS kind
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
          AND pg_get_userbyid(c.relowner) <> owner_role
          AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
          AND NOT (c.relkind = 'S' AND EXISTS (
              SELECT FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
              AND d.deptype IN ('a', 'i')))
    LOOP
        EXECUTE format('ALTER %s %I OWNER TO %I', item.kind, item.name, owner_role);
    END LOOP;
    FOR item IN
        SELECT p.oid::regprocedure AS signature
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = 'public' AND p.prokind IN ('f', 'p') AND pg_get_userbyid(p.proowner) <> owner_role
          AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
    LOOP
        EXECUTE format('ALTER ROUTINE %s OWNER TO %I', item.signature, owner_role);
    END LOOP;

    -- 4. The application reads and writes rows: no TRUNCATE, REFERENCES or TRIGGER, and no DDL (only owners alter).
    EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA public FROM %I', app_role);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO %I', app_role);
    EXECUTE format('REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM %I', app_role);
    EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO %I', app_role);
    FOR item IN SELECT unnest(append_only) AS name LOOP
        IF to_regclass(format('public.%I', item.name)) IS NOT NULL THEN
            EXECUTE format('REVOKE UPDATE, DELETE ON public.%I FROM %I', item.name, app_role);
        END IF;
    END LOOP;
    IF to_regclass('public.django_migrations') IS NOT NULL THEN
        EXECUTE format('REVOKE INSERT ON public.django_migrations FROM %I', app_role);
    END IF;

    -- 5. Tables and sequences that later migrations create (as the owner) are granted the same way; rerun this
    --    file after migrating so a new append-only table loses UPDATE and DELETE too.
    EXECUTE format(
        'ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO %I',
        owner_role, app_role
    );
    EXECUTE format(
        'ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO %I',
        owner_role, app_role
    );
END
$roles$;
