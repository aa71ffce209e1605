-- Failed logins were counted per submitted email alone, so anyone could lock anyone out of their
-- account. Now they are counted per (email, client address), which slows only the client that
-- guesses, and per client address across every email, against one client trying a password on
-- many accounts. Both whether or not an account has the email, so the limits reveal nothing. In
-- the database, not in memory: pods come and go, and each would count alone.
CREATE TABLE auth.login_failures (
  email             text NOT NULL,
  -- An IPv4 address, or an IPv6 /64 network (`2001:db8:0:1::/64`).
  client            text NOT NULL,
  failures          integer NOT NULL,
  window_started_at timestamptz NOT NULL,
  locked_until      timestamptz,
  PRIMARY KEY (email, client)
);

CREATE TABLE auth.client_login_failures (
  client            text PRIMARY KEY,
  failures          integer NOT NULL,
  window_started_at timestamptz NOT NULL,
  locked_until      timestamptz
);

-- What the sweep of stale counts scans.
CREATE INDEX login_failures_window_idx ON auth.login_failures (window_started_at);
CREATE INDEX client_login_failures_window_idx ON auth.client_login_failures (window_started_at);

-- auth.login_throttle (per email) is no longer read or written. It is left for the pods of the
-- version before, which may still serve while this one rolls out; a later migration drops it.
