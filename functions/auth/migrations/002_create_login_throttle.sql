-- Failed logins per submitted email, whether or not an account has it, so the limit reveals
-- nothing. In the database, not in memory: pods come and go, and each would count alone.
CREATE TABLE auth.login_throttle (
  email             text PRIMARY KEY,
  failures          integer NOT NULL,
  window_started_at timestamptz NOT NULL,
  locked_until      timestamptz
);
