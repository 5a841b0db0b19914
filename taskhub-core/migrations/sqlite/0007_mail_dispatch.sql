-- A mail handed to the `interactive` job queue carries the token of that hand-over: the job
-- sends only while the row still holds its token (a later hand-over, after the lease ran out,
-- makes an older queued copy of the job a no-op), and a job re-run after its worker died sends
-- the mail that was not recorded sent.
ALTER TABLE mail_outbox ADD COLUMN lock_token TEXT;
