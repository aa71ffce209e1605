/**
 * A real failure of one statement, for the outbox tests: PostgreSQL itself refuses to mark a row
 * sent, through a trigger, so the code under test meets the error a broken connection or a lock
 * timeout would give it at exactly that point.
 */
import type pg from 'pg'

/**
 * Makes every UPDATE that marks a row of `table` sent fail, the first `times` times (default:
 * always), with "marking refused by the test". Returns `repair`, which lets marking succeed again,
 * and `cleanup`, the statements that drop what this created (run them after the table is dropped
 * or before, in order).
 */
export async function refuseOutboxMarks(pool: pg.Pool, table: string, times = 1_000_000) {
  const name = table.replace('.', '.refuse_mark_')
  await pool.query(`CREATE SEQUENCE ${name}`)
  // nextval is not rolled back with the failed statement, so it counts every attempt.
  await pool.query(`CREATE FUNCTION ${name}() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF nextval('${name}') <= ${times} THEN RAISE EXCEPTION 'marking refused by the test'; END IF;
      RETURN NEW;
    END $$`)
  await pool.query(`CREATE TRIGGER refuse_mark BEFORE UPDATE OF sent_at ON ${table}
    FOR EACH ROW WHEN (OLD.sent_at IS NULL AND NEW.sent_at IS NOT NULL) EXECUTE FUNCTION ${name}()`)
  return {
    repair: async () => void (await pool.query(`DROP TRIGGER refuse_mark ON ${table}`)),
    cleanup: [`DROP FUNCTION IF EXISTS ${name}() CASCADE`, `DROP SEQUENCE IF EXISTS ${name}`],
  }
}
