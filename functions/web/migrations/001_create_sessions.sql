-- The storefront's sessions: the browser holds only a random token in an HttpOnly cookie; the
-- access token the auth function issued stays here. A visitor who has not logged in gets a row
-- too (user_id NULL) when a page shows a form, so that the form's CSRF token has something to
-- be checked against.
CREATE TABLE web.sessions (
  -- SHA-256 of the cookie's token: a copy of this table does not give anyone a session.
  token_hash   bytea PRIMARY KEY,
  csrf_token   text NOT NULL,
  user_id      uuid,
  email        text,
  name         text,
  role         text CHECK (role IN ('customer', 'admin')),
  access_token text,
  -- A one-time notice for the next page ({kind, text}), set before a redirect.
  flash        jsonb,
  created_at   timestamptz NOT NULL DEFAULT now(),
  expires_at   timestamptz NOT NULL,
  CHECK ((user_id IS NULL) = (access_token IS NULL))
);

CREATE INDEX sessions_expires_at ON web.sessions (expires_at);
