"""Print this node's Patroni configuration (JSON, which is valid YAML) from the environment."""
import json
import os

env = os.environ
node = env["NODE_ID"]
bind = env.get("BIND_ADDR", "127.0.0.1")
pg_port = env["PG_PORT"]
api_port = env["API_PORT"]

config = {
    "scope": env.get("CLUSTER_NAME", "postgresql-cluster"),
    "name": f"pg-{node}",
    "restapi": {
        "listen": f"{bind}:{api_port}",
        "connect_address": f"{bind}:{api_port}",
        "authentication": {
            "username": env["PATRONI_API_USERNAME"],
            "password": env["PATRONI_API_PASSWORD"],
        },
    },
    "ctl": {"insecure": True},
    "etcd3": {"hosts": env.get("ETCD_HOSTS", f"{bind}:2379")},
    "bootstrap": {
        "dcs": {
            "ttl": int(env.get("PATRONI_TTL", "30")),
            "loop_wait": int(env.get("PATRONI_LOOP_WAIT", "10")),
            "retry_timeout": 10,
            "maximum_lag_on_failover": 1048576,
            # pg-wal's slot: permanent, so every member keeps it and the
            # archive resumes on whichever member leads after a failover.
            "slots": {"pg_wal_archive": {"type": "physical"}},
            "postgresql": {
                "use_pg_rewind": True,
                "use_slots": True,
                "parameters": {
                    "wal_level": "replica",
                    "hot_standby": "on",
                    "max_wal_senders": 10,
                    "max_replication_slots": 10,
                    "wal_keep_size": "256MB",
                    "max_connections": 100,
                },
            },
        },
        "initdb": [{"encoding": "UTF8"}, {"locale": "C.UTF-8"}, "data-checksums"],
    },
    "postgresql": {
        "listen": f"{bind}:{pg_port}",
        "connect_address": f"{bind}:{pg_port}",
        "data_dir": "/home/postgres/data",
        "bin_dir": "/usr/lib/postgresql/15/bin",
        "pgpass": f"/tmp/pgpass{node}",
        "authentication": {
            "superuser": {"username": "postgres", "password": env["PG_SUPERUSER_PASSWORD"]},
            "replication": {"username": "replicator", "password": env["PG_REPLICATION_PASSWORD"]},
            "rewind": {"username": "rewind_user", "password": env["PG_REWIND_PASSWORD"]},
        },
        "pg_hba": [
            "local all all trust",
            "host replication replicator 127.0.0.1/32 scram-sha-256",
            "host replication replicator ::1/128 scram-sha-256",
            "host all all 0.0.0.0/0 scram-sha-256",
            "host all all ::/0 scram-sha-256",
        ],
        "parameters": {"unix_socket_directories": "/var/run/postgresql"},
        # A rebuilt member starts copying at once instead of waiting for a
        # spread checkpoint on the leader (minutes under write load).
        "basebackup": [{"checkpoint": "fast"}],
    },
    "tags": {"nofailover": False, "noloadbalance": False, "clonefrom": False, "nosync": False},
}
print(json.dumps(config, indent=2))
