#!/usr/bin/python3
"""postgres_job.py: the PostgreSQL job dealflow's ingest is compared with.

Loads the bench's workload (the bytes `bench --dump-workload FILE` writes: the
same msgpack events the bench sends, one after the other) into a throwaway
PostgreSQL cluster: an events table (unique id, an index by deal) and a
projection of each deal, both written by one plpgsql function per batch of
1 000 events, one transaction and one synced commit per batch (fsync and
synchronous_commit on). Prints the recorded events per second of each run and
their median.

Needs Debian's postgresql (15) and python3-psycopg2 and python3-msgpack.
Run as root, the server runs as the user `postgres`.
"""
import argparse
import glob
import json
import os
import pwd
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import msgpack
import psycopg2

SCHEMA = """
DROP TABLE IF EXISTS events, deals;
CREATE TABLE events (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id text NOT NULL UNIQUE,
    deal text NOT NULL,
    type text NOT NULL,
    at bigint NOT NULL,
    body jsonb NOT NULL
);
CREATE INDEX events_by_deal ON events (deal, seq);
CREATE TABLE deals (
    deal text PRIMARY KEY,
    stage text,
    stage_at bigint,
    owner text,
    owner_at bigint,
    amount numeric,
    amount_at bigint,
    events integer NOT NULL,
    activities integer NOT NULL,
    first_at bigint NOT NULL,
    last_at bigint NOT NULL
);
-- Records the batch's new events (an id seen before is skipped) and folds
-- them into each deal's row: the latest stage, owner and amount by `at`
-- (late events do not overwrite newer values), counts and first and last
-- `at`. Returns the number of events recorded.
CREATE OR REPLACE FUNCTION ingest(batch jsonb) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    recorded integer;
BEGIN
    WITH fresh AS (
        INSERT INTO events (id, deal, type, at, body)
        SELECT e->>'id', e->>'deal', e->>'type', (e->>'at')::bigint, e
        FROM jsonb_array_elements(batch) AS e
        ON CONFLICT (id) DO NOTHING
        RETURNING seq, deal, type, at, body
    ), per_deal AS (
        SELECT deal,
               count(*) AS events,
               count(*) FILTER (WHERE type = 'activity') AS activities,
               (array_agg(body->>'stage' ORDER BY at DESC, seq DESC)
                   FILTER (WHERE type = 'stage'))[1] AS stage,
               max(at) FILTER (WHERE type = 'stage') AS stage_at,
               (array_agg(body->>'owner' ORDER BY at DESC, seq DESC)
                   FILTER (WHERE body ? 'owner'))[1] AS owner,
               max(at) FILTER (WHERE body ? 'owner') AS owner_at,
               (array_agg((body->>'amount')::numeric ORDER BY at DESC, seq DESC)
                   FILTER (WHERE body ? 'amount'))[1] AS amount,
               max(at) FILTER (WHERE body ? 'amount') AS amount_at,
               min(at) AS first_at,
               max(at) AS last_at
        FROM fresh
        GROUP BY deal
    ), upsert AS (
        INSERT INTO deals AS d
        SELECT deal, stage, stage_at, owner, owner_at, amount, amount_at,
               events, activities, first_at, last_at
        FROM per_deal
        ON CONFLICT (deal) DO UPDATE SET
            stage = CASE WHEN excluded.stage_at >= coalesce(d.stage_at, excluded.stage_at)
                         THEN excluded.stage ELSE d.stage END,
            stage_at = greatest(d.stage_at, excluded.stage_at),
            owner = CASE WHEN excluded.owner_at >= coalesce(d.owner_at, excluded.owner_at)
                         THEN excluded.owner ELSE d.owner END,
            owner_at = greatest(d.owner_at, excluded.owner_at),
            amount = CASE WHEN excluded.amount_at >= coalesce(d.amount_at, excluded.amount_at)
                          THEN excluded.amount ELSE d.amount END,
            amount_at = greatest(d.amount_at, excluded.amount_at),
            events = d.events + excluded.events,
            activities = d.activities + excluded.activities,
            first_at = least(d.first_at, excluded.first_at),
            last_at = greatest(d.last_at, excluded.last_at)
        RETURNING 1
    )
    SELECT coalesce(sum(events), 0) INTO recorded FROM per_deal;
    RETURN recorded;
END;
$$;
"""

BATCH = 1000


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def postgres_bin():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not found:
        sys.exit("postgres_job: no /usr/lib/postgresql/*/bin/pg_ctl: install Debian's postgresql")
    return os.path.dirname(found[-1])


class Cluster:
    """A throwaway cluster in a temp dir, on a free loopback port."""

    def __init__(self, keep):
        self.keep = keep
        self.bin = postgres_bin()
        self.dir = tempfile.mkdtemp(prefix="dealflow-pg-", dir=os.environ.get("TMPDIR") or "/tmp")
        self.data = os.path.join(self.dir, "data")
        self.log = os.path.join(self.dir, "postgres.log")
        self.port = free_port()
        self.as_user = []
        if os.geteuid() == 0:  # the server refuses to run as root
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]

    def run(self, *args):
        subprocess.run(self.as_user + [os.path.join(self.bin, args[0])] + list(args[1:]),
                       check=True, stdout=subprocess.DEVNULL)

    def start(self):
        self.run("initdb", "-D", self.data, "-U", "bench", "--auth=trust", "-E", "UTF8",
                 "--locale=C")
        options = ("-c listen_addresses=127.0.0.1 -c port=%d -c unix_socket_directories=%s "
                   "-c fsync=on -c synchronous_commit=on -c full_page_writes=on"
                   % (self.port, self.dir))
        self.run("pg_ctl", "-D", self.data, "-l", self.log, "-o", options, "-w", "-t", "60",
                 "start")

    def version(self):
        out = subprocess.run([os.path.join(self.bin, "postgres"), "--version"],
                             capture_output=True, text=True)
        return out.stdout.strip()

    def stop(self):
        try:
            self.run("pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop")
        finally:
            if self.keep:
                print("kept %s" % self.dir)
            else:
                shutil.rmtree(self.dir, ignore_errors=True)


def read_workload(path):
    """The events as JSON arrays of BATCH events, and the number of distinct ids."""
    with open(path, "rb") as f:
        events = list(msgpack.Unpacker(f, raw=False))
    ids = set(e["id"] for e in events)
    batches = [json.dumps(events[i:i + BATCH], separators=(",", ":"))
               for i in range(0, len(events), BATCH)]
    return len(events), len(ids), batches


def one_run(port, batches, distinct):
    conn = psycopg2.connect(host="127.0.0.1", port=port, user="bench", dbname="postgres")
    cur = conn.cursor()
    cur.execute(SCHEMA)
    conn.commit()
    conn.autocommit = True
    cur.execute("CHECKPOINT")
    conn.autocommit = False
    recorded = 0
    t0 = time.monotonic()
    for body in batches:
        cur.execute("SELECT ingest(%s::jsonb)", (body,))
        recorded += cur.fetchone()[0]
        conn.commit()
    took = time.monotonic() - t0
    if recorded != distinct:
        sys.exit("postgres_job: recorded %d events of %d distinct" % (recorded, distinct))
    cur.execute("SELECT count(*) FROM deals")
    deals = cur.fetchone()[0]
    cur.execute("SELECT pg_total_relation_size('events'), pg_total_relation_size('deals')")
    events_bytes, deals_bytes = cur.fetchone()
    conn.close()
    return distinct / took, deals, events_bytes / distinct, deals_bytes / distinct


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workload", required=True,
                        help="file written by `bench --dump-workload FILE`")
    parser.add_argument("--repeat", type=int, default=3, help="runs, each on fresh tables")
    parser.add_argument("--keep", action="store_true", help="keep the cluster's temp dir")
    args = parser.parse_args()

    sent, distinct, batches = read_workload(args.workload)
    cluster = Cluster(args.keep)
    print("PostgreSQL job: %s, %d events (%d distinct) in %d batches of %d, fsync on, "
          "one synced commit per batch, port %d"
          % (cluster.version(), sent, distinct, len(batches), BATCH, cluster.port))
    sys.stdout.flush()
    cluster.start()
    try:
        rates = []
        for r in range(args.repeat):
            rate, deals, events_b, deals_b = one_run(cluster.port, batches, distinct)
            rates.append(rate)
            print("  run %d: %.0f ev/s recorded, %d deals; tables with their indexes: events "
                  "%.1f B/event, deals %.1f B/event" % (r + 1, rate, deals, events_b, deals_b))
            sys.stdout.flush()
    finally:
        cluster.stop()
    print("postgres median %.0f events/s" % statistics.median(rates))


if __name__ == "__main__":
    main()
