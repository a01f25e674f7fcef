// Package featureflags decides, per client app and user, which credentials a
// login issues and a request may use while a product moves from server-side
// sessions to JWTs, and lets operators change that safely at run time.
//
// # Phases
//
// A State names a global Phase, optionally overridden per client id
// (State.Clients), so a mobile app can be jwt-only while the web client stays
// in dual. State.Decide turns the effective phase into a Decision:
//
//	phase       issue             accept            extras
//	legacy      session           session           -
//	dual        session+tokens    both              exchange
//	prefer-jwt  session+tokens    both              exchange, Deprecation/Sunset/Link headers
//	retiring    tokens (+session  tokens (+session  exchange; headers on the sessions still
//	            where kept)       where kept)       accepted
//	jwt-only    tokens            tokens            -
//
// In retiring, sessions are kept for exempt clients (State.ExemptClients) and
// for users outside the rollout; everyone else gets 401 session_retired. In
// jwt-only even exempt clients lose sessions: exemption softens retiring, it
// does not cancel the end of the migration.
//
// The headers are precomputed when a State is installed: Deprecation is an
// RFC 9745 structured date (@unix-seconds) of when this client's sessions
// became deprecated (State.ClientsDeprecatedAt, else State.DeprecatedAt).
// The Manager keeps those dates: set when the global phase or a client's
// effective phase enters prefer-jwt or later, kept while it stays there,
// cleared when it goes back below prefer-jwt (so a later move forward
// announces the new date), never after the sunset; a date the caller sets
// explicitly is kept. Sunset is the RFC 8594 HTTP-date of State.Sunset,
// omitted when unset; Link points at DocsURL with rel="deprecation".
//
// # Rollout
//
// Bucket hashes (RolloutSeed, user id) with FNV-1a 64 into one of 10 000
// buckets; a user is in the rollout when the bucket is below Rollout×100
// (Rollout is a percentage with 0.01 % resolution). The bucket depends on
// nothing else, so raising the percentage only ever adds users: whoever lost
// sessions at 20 % still has none at 40 %, and no one flips back and forth.
// Changing the seed reshuffles everyone.
//
// # Deciding
//
// Requests call Flags.Decide, which reads the current *State through one
// atomic pointer: no lock, no network, no allocation. The Manager swaps a new
// snapshot in after every change it makes or sees.
// Manager.OnChange registers a hook called once per installed change, with
// the old and the new state, for what must follow the state (a metrics
// gauge, a cache): no need to poll the snapshot.
//
// # Sources
//
// A Backend stores the state, its history (for rollback) and the audit log.
// There are two kinds of source:
//
//   - Shared (NewRedisBackend): the state is one versioned JSON value in
//     Redis, changed only through an atomic Lua compare-and-swap on hash-tagged
//     keys ({tokenshift:flags}:state, :history, :audit, so it works on Redis
//     Cluster). The configuration only seeds it when Redis holds nothing; from
//     then on the stored state is the truth, operators change it through
//     Manager.Apply and Manager.Rollback, and every instance follows it
//     (Manager.Run): a pub/sub announcement makes a change visible everywhere
//     within a second, and a periodic re-read (RedisOptions.PollInterval,
//     default 5 s) covers announcements lost while a connection was down.
//   - Static (Options.Backend nil, or NewMemoryBackend): the state lives in
//     this process and comes from the configuration. Manager.ReloadStatic
//     installs new settings (audited as "reload") if they differ from the
//     last ones read. The tokenshift binary calls it when the --config file
//     changes (serve watches the file; a file that does not load or validate
//     is logged and the current state kept). Operators may still Apply and
//     Rollback, but only on this instance and only until the next reload or
//     restart; the state is seeded again at every start, so a configured
//     deprecation date (migration.deprecated_at) is what keeps the
//     Deprecation header stable across restarts. Use it for a single
//     instance.
//
// With a shared backend the binary does not reload the file: it logs that
// the file's migration settings are ignored and that changes go through the
// admin API or the CLI (ReloadStatic returns ErrNotStatic).
//
// # Versions and compare-and-swap
//
// Every state carries a Version. A Change names the version it was made from
// (Change.Expect); if another operator changed the state in between, Apply
// fails with a *VersionConflictError (ErrVersionConflict) instead of
// silently overwriting them. A partial update (Change.Edit) is applied to
// the stored state at that version, never to this instance's snapshot, so a
// lagging instance cannot revert fields another operator just set. The
// backend checks the version and writes state, history and audit in one
// atomic step.
//
// # Guard
//
// A change that would refuse sessions to more users — a client moving into
// retiring or jwt-only from a lower phase, or a client in retiring whose
// rollout grows, is reseeded or loses its exemption — is checked against the
// usage figures (Options.Guard). Apply refuses with a *GuardError carrying
// the figures and the reasons (errors.Is ErrGuardRefused) when the session
// share of the affected clients' traffic over GuardWindow (24 h) is above
// GuardMaxShare (the service configures 1 %; 0 tolerates no session at all),
// when those clients sent no accepted request in the window, or when the
// usage data does not reach back to the start of the window (a fresh
// deployment, a store restarted empty): missing history is not evidence that
// nobody uses sessions.
// Change.Force with a Reason overrides it and is marked Forced in the audit;
// when the figures cannot be read, a guarded change is refused unless forced.
// Refusals are audited as well (action "refused", with the figures), so the
// log holds every attempt, not only the changes that happened.
// Rollback is never guarded: going back must always be possible. Rollback
// restores the previous state exactly under a new version, and successive
// rollbacks walk further back rather than undoing each other.
package featureflags
