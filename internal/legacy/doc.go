// Package legacy reads, and ends, the sessions a product already has, so
// that putting tokenshift in front of it logs nobody out (issue 12). One
// Source per legacy.sources[] entry:
//
//   - express: express-session + connect-redis. Cookie "s:<id>.<sig>"
//     (cookie-signature: base64 HMAC-SHA256 without padding, percent-encoded),
//     verified against every secret in constant time; data JSON at
//     <key_prefix><id>; expiry = the key's TTL, as the app itself honours it
//     (cookie.expires only when the key has none: see decodeExpressData).
//   - django: django.contrib.sessions.backends.db. Cookie = 32 of [a-z0-9];
//     row (session_data, expire_date) of the table; session_data signed
//     with SECRET_KEY (or a fallback), zlib-compressed or not, and the
//     pre-3.1 format; user _auth_user_id, Session.AuthHash =
//     _auth_user_hash for DjangoAuthHashMatches.
//   - php: the phpredis session handler. Cookie = PHP's id alphabet; data
//     at <key_prefix><id> in the php or php_serialize handler's format,
//     read by a strict, bounded parser of PHP serialize.
//   - callout: any other stack. GET url with the forward_cookies; 200 +
//     JSON is a session, 401/403/404/3xx none, anything else an outage;
//     answers cached at most cache_ttl (<= 1s), Forget/ForgetUser drop them.
//
// Every kind: the Verifier answers a session this instance verified less
// than cache_ttl ago from the Set's near cache (cache.go), with the
// mirror's checks on every hit; Open wraps the sources of a cached kind
// so that their Forget and ForgetUser also drop its entries.
//
// Nothing here logs; errors never hold secrets, ids or session data.
//
// # Integration (for internal/authn, httpapi, usage, config)
//
// Start-up: config.Validate calls CheckAll([]Options) (each entry as
// Check, plus unique names and cookie names: a cookie name belongs to one
// source; errors are *OptionError whose Field is "sources[i].<key>", so the
// config error can say "legacy.sources[1].secrets: ..."), and checks that
// no legacy cookie is tokenshift's own. serve calls Open (no I/O), then
// Set.Ping (log and go on when a store is down: /readyz reports the
// failing source names from Set.Ping), and Set.Close at shutdown.
//
// Per request, in the one authentication middleware:
//
//	src, id, err := set.Parse(func(n string) string { return c.Cookies(n) })
//	switch {
//	case errors.Is(err, legacy.ErrNoCookie): // no legacy cookie: other schemes
//	case errors.Is(err, legacy.ErrForged):   // 401 invalid_token; the store is never read
//	default:
//	    sess, err := src.Load(ctx, id)
//	    // ErrNotFound, ErrMalformed (both wrap auth.ErrNotFound /
//	    // auth.ErrInvalid): 401. auth.ErrUnavailable: 503
//	    // store_unavailable, within the source's timeout.
//	}
//
// Parse does no I/O, so a forged cookie costs no store read; Load is one
// read (express/php: GET+PTTL in one pipeline; django: one SELECT;
// callout: one GET, none on a cache hit). Then, on the integrator's side:
// look sess.UserID up in the user store (unknown or suspended: 401); for
// django, refuse unless DjangoAuthHashMatches(secretKey, user's password
// hash, sess.AuthHash) for SECRET_KEY or a fallback (when the user store
// has the hash); refuse a session whose user was revoked after
// sess.IssuedAt (IssuedAt is the last time the legacy app saved the
// session, so "IssuedAt before the revocation instant" proves "created
// before it"; a zero IssuedAt proves nothing: rely on End of the seen ids
// below); the credential is scheme "session", client sess.Client, source
// sess.Source. Log IDHash(sess.Source, sess.ID), never sess.ID.
//
// Ending: logout calls End(ctx, id): the session is deleted from its own
// store, so the legacy app refuses it too (idempotent). Revoking a user
// (log out everywhere, password change, suspension) calls End for every id
// of the user that tokenshift has seen (keep a bounded per-user index of
// ids from successful Loads), and ForgetUser on every instance (through
// the revocation broadcast; Set.ForgetUser does every source) so the
// callout cache cannot outlive it. A
// callout's End is ErrEndUnsupported: the legacy app cannot be told, so
// tokenshift must refuse that id itself (a denylist entry until the
// session's app-side lifetime ends).
//
// Verifier (verifier.go) is that integrator's side, done: it implements
// authn.LegacyVerifier over a Set, a UserLookup (user.Verifier.LookupID)
// and the revocation mirror's per-user not-before; cmd/tokenshift serve
// builds it and hands it to every authn variant through httpapi.Options.
//
// # Limits
//
// Session data and callout answers: at most MaxDataBytes (64 KiB, also
// after zlib inflation), nested at most MaxDepth (32); larger or deeper is
// ErrMalformed. A user id is a string or an integer of at most 256 bytes.
// Stores that keep no expiry count as valid for a day after each read.
package legacy
