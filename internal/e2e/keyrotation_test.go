package e2e

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tokenshift/tokenshift/internal/testutil/redistest"
)

// foreignVerifier is another service that trusts our tokens knowing nothing
// but the JWKS URL: it caches the key set for exactly the Cache-Control
// max-age and, strictly, does not refetch on an unknown kid, so a key that
// signs before it was published long enough shows up as a failure. It uses
// golang-jwt and the standard library only, none of tokenshift's packages.
type foreignVerifier struct {
	bases []string // the JWKS is fetched from each instance in turn

	mu      sync.Mutex
	next    int
	keys    map[string]foreignKey
	expires time.Time
	maxAges []int
}

type foreignKey struct {
	alg string
	key any
}

func (v *foreignVerifier) keySet() (map[string]foreignKey, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.keys != nil && time.Now().Before(v.expires) {
		return v.keys, nil
	}
	base := v.bases[v.next%len(v.bases)]
	v.next++
	fetched := time.Now()
	res, err := client.Get(base + "/.well-known/jwks.json")
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		return nil, fmt.Errorf("JWKS: HTTP %d", res.StatusCode)
	}
	maxAge := 0
	if m := regexp.MustCompile(`max-age=(\d+)`).FindStringSubmatch(res.Header.Get("Cache-Control")); m != nil {
		maxAge, _ = strconv.Atoi(m[1])
	}
	v.maxAges = append(v.maxAges, maxAge)
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.NewDecoder(res.Body).Decode(&set); err != nil {
		return nil, err
	}
	keys := map[string]foreignKey{}
	for _, j := range set.Keys {
		k, err := parseJWK(j)
		if err != nil {
			return nil, fmt.Errorf("JWK %s: %w", j["kid"], err)
		}
		keys[j["kid"]] = k
	}
	v.keys, v.expires = keys, fetched.Add(time.Duration(maxAge)*time.Second)
	return keys, nil
}

func parseJWK(j map[string]string) (foreignKey, error) {
	b := func(name string) []byte {
		raw, _ := base64.RawURLEncoding.DecodeString(j[name])
		return raw
	}
	switch {
	case j["kty"] == "OKP" && j["crv"] == "Ed25519":
		return foreignKey{alg: "EdDSA", key: ed25519.PublicKey(b("x"))}, nil
	case j["kty"] == "EC" && j["crv"] == "P-256":
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, b("x")...), b("y")...))
		return foreignKey{alg: "ES256", key: pub}, err
	case j["kty"] == "RSA":
		return foreignKey{alg: "RS256", key: &rsa.PublicKey{N: new(big.Int).SetBytes(b("n")), E: int(new(big.Int).SetBytes(b("e")).Int64())}}, nil
	}
	return foreignKey{}, fmt.Errorf("unsupported key type %s", j["kty"])
}

func (v *foreignVerifier) verify(tok string) error {
	keys, err := v.keySet()
	if err != nil {
		return err
	}
	_, err = jwt.NewParser(
		jwt.WithValidMethods([]string{"EdDSA", "ES256", "RS256"}),
		jwt.WithIssuer("http://localhost:8080"),
		jwt.WithAudience("tokenshift"),
		jwt.WithExpirationRequired(),
	).Parse(tok, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		k, ok := keys[kid]
		if !ok {
			return nil, fmt.Errorf("kid %q is not in the cached JWKS", kid)
		}
		if t.Method.Alg() != k.alg {
			return nil, errors.New("alg does not match the JWK")
		}
		return k.key, nil
	})
	return err
}

type issuedToken struct {
	tok, kid, by string
	at, exp      time.Time
}

func tokenHeaderKID(tok string) string {
	seg, _, _ := strings.Cut(tok, ".")
	raw, _ := base64.RawURLEncoding.DecodeString(seg)
	var h struct {
		Kid string `json:"kid"`
	}
	_ = json.Unmarshal(raw, &h)
	return h.Kid
}

func tokenExp(tok string) time.Time {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return time.Time{}
	}
	raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var c struct {
		Exp int64 `json:"exp"`
	}
	_ = json.Unmarshal(raw, &c)
	return time.Unix(c.Exp, 0)
}

// refreshOn rotates the refresh token on an instance, without the testing.T
// helpers (it runs on a background goroutine).
func refreshOn(base, refresh string) (access, next string, err error) {
	body, _ := json.Marshal(map[string]string{"refresh_token": refresh})
	res, err := client.Post(base+"/auth/refresh", "application/json", bytes.NewReader(body))
	if err != nil {
		return "", "", err
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 {
		return "", "", fmt.Errorf("refresh on %s: %d %s", base, res.StatusCode, raw)
	}
	var out struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return "", "", err
	}
	return out.AccessToken, out.RefreshToken, nil
}

func meStatus(base, tok string) (int, error) {
	req, _ := http.NewRequest("GET", base+"/auth/me", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	res, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	res.Body.Close()
	return res.StatusCode, nil
}

func jwksKIDs(t *testing.T, in *instance) []string {
	t.Helper()
	r := in.do(t, req{path: "/.well-known/jwks.json"})
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(r.body, &set); err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.Kid)
	}
	slices.Sort(kids)
	return kids
}

// TestKeyRotationAcrossInstances: two instances on one Redis and one keys
// directory rotate their signing key (generate → rotate via the CLI → the new
// key signs → the old key is retired) while tokens are issued by both and
// checked continuously by a verifier that only reads the JWKS: no token that
// has not expired may ever fail.
func TestKeyRotationAcrossInstances(t *testing.T) {
	t.Parallel()
	// The reload interval is generous for a loaded machine: it bounds how late
	// an instance may apply the rotation and still publish in time.
	const publishDelay, reload, accessTTL, leeway = time.Second, 400 * time.Millisecond, 3 * time.Second, time.Second
	srv := redistest.Start(t)
	keys := keysDir(t) // k1
	env := []string{
		"TOKENSHIFT_STORAGE_REDIS_URL=" + srv.URL(),
		"TOKENSHIFT_JWT_KEYS_DIR=" + keys,
		"TOKENSHIFT_JWT_ACCESS_TTL=" + accessTTL.String(),
		"TOKENSHIFT_JWT_LEEWAY=" + leeway.String(),
		"TOKENSHIFT_JWT_ROTATION_PUBLISH_DELAY=" + publishDelay.String(),
		"TOKENSHIFT_JWT_ROTATION_RELOAD_INTERVAL=" + reload.String(),
	}
	a := start(t, env...)
	b := start(t, env...)
	instances := []*instance{a, b}
	fv := &foreignVerifier{bases: []string{a.URL, b.URL}}

	refresh := a.login(t, aliceEmail, alicePass, "mobile").json(t)["refresh_token"].(string)
	var (
		mu       sync.Mutex
		issued   []issuedToken
		failures []string
		issueErr error
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if len(failures) < 20 {
			failures = append(failures, time.Now().Format("15:04:05.000")+" "+fmt.Sprintf(format, args...))
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // both instances issue, in turn
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			in := instances[i%2]
			access, next, err := refreshOn(in.URL, refresh)
			if err != nil {
				mu.Lock()
				issueErr = err
				mu.Unlock()
				return
			}
			refresh = next
			tok := issuedToken{tok: access, kid: tokenHeaderKID(access), by: in.URL, at: time.Now(), exp: tokenExp(access)}
			mu.Lock()
			issued = append(issued, tok)
			mu.Unlock()
			// The other instance accepts it at once.
			other := instances[(i+1)%2]
			if st, err := meStatus(other.URL, access); err != nil || st != 200 {
				fail("token %s from %s refused by %s: %d %v", tok.kid, tok.by, other.URL, st, err)
			}
		}
	}()
	go func() { // every live token, over and over, until it expires
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			mu.Lock()
			live := slices.Clone(issued)
			mu.Unlock()
			for _, tok := range live {
				// A margin for the time this loop takes: only tokens that are
				// certainly unexpired must pass.
				if time.Until(tok.exp) < 300*time.Millisecond {
					continue
				}
				if err := fv.verify(tok.tok); err != nil {
					fail("foreign verifier refused a live %s token from %s (exp in %s): %v", tok.kid, tok.by, time.Until(tok.exp).Round(time.Millisecond), err)
				}
			}
		}
	}()
	stopAll := func() {
		select {
		case <-stop:
		default:
			close(stop)
			wg.Wait()
		}
	}
	t.Cleanup(stopAll)

	time.Sleep(1500 * time.Millisecond)
	cli := func(args ...string) (string, error) {
		cmd := exec.Command(binary, args...)
		cmd.Env = append(os.Environ(), "TOKENSHIFT_SERVER="+b.URL, "TOKENSHIFT_ADMIN_EMAIL="+opsEmail, "TOKENSHIFT_ADMIN_PASSWORD="+opsPass)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	rotateStart := time.Now()
	out, err := cli("keys", "rotate", "--dir", keys, "--generate", "--kid", "k2", "--reason", "e2e rotation")
	if err != nil || !strings.Contains(out, "rotation started") || !strings.Contains(out, "k2 is published now") {
		t.Fatalf("keys rotate: %v\n%s", err, out)
	}
	t.Logf("keys rotate took %s:\n%s", time.Since(rotateStart).Round(time.Millisecond), out)
	if strings.Contains(out, "PROBLEM") {
		t.Fatalf("the rotation reports problems:\n%s", out)
	}
	// A second rotation while this one runs is refused.
	if out, err := cli("keys", "rotate", "--reason", "again"); err == nil || !strings.Contains(out, "rotation_in_progress") {
		t.Fatalf("second rotation: %v\n%s", err, out)
	}

	// Wait for the old key to leave both JWKS, then stop and judge.
	deadline := rotateStart.Add(publishDelay + reload + accessTTL + leeway + 8*time.Second)
	for !slices.Equal(jwksKIDs(t, a), []string{"k2"}) || !slices.Equal(jwksKIDs(t, b), []string{"k2"}) {
		if time.Now().After(deadline) {
			t.Fatalf("k1 still published: a %v, b %v\n%s", jwksKIDs(t, a), jwksKIDs(t, b), b.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	retiredAfter := time.Since(rotateStart)
	// Give the verifier one more max-age on the k2-only key set.
	time.Sleep(1200 * time.Millisecond)
	stopAll()

	mu.Lock()
	defer mu.Unlock()
	if issueErr != nil {
		t.Fatalf("issuing stopped: %v", issueErr)
	}
	if len(failures) > 0 {
		t.Fatalf("%d verification failures of unexpired tokens, first ones:\n%s", len(failures), strings.Join(failures, "\n"))
	}
	counts := map[string]int{}
	var lastK1 issuedToken
	var firstK2 time.Time
	for _, tok := range issued {
		counts[tok.kid+" by "+tok.by]++
		if tok.kid == "k1" {
			lastK1 = tok
		}
		if tok.kid == "k2" && firstK2.IsZero() {
			firstK2 = tok.at
		}
	}
	for _, kid := range []string{"k1", "k2"} {
		for _, in := range instances {
			if counts[kid+" by "+in.URL] == 0 {
				t.Fatalf("no %s token from %s: %v", kid, in.URL, counts)
			}
		}
	}
	if firstK2.Sub(rotateStart) < publishDelay {
		t.Fatalf("k2 signed %s after the rotation began; the publish delay is %s", firstK2.Sub(rotateStart), publishDelay)
	}
	if !slices.Contains(fv.maxAges, int(publishDelay/time.Second)) || slices.ContainsFunc(fv.maxAges, func(m int) bool { return m > int(publishDelay/time.Second) }) {
		t.Fatalf("JWKS max-ages %v; want %s, never more", fv.maxAges, publishDelay)
	}
	t.Logf("issued %d tokens %v; k2 signed %s after the rotate began; k1 gone from both JWKS after %s; %d JWKS fetches",
		len(issued), counts, firstK2.Sub(rotateStart).Round(time.Millisecond), retiredAfter.Round(time.Millisecond), len(fv.maxAges))

	// The last k1 token is refused everywhere, and the verifier has no key for it.
	for _, in := range instances {
		expectProblem(t, in.do(t, req{path: "/auth/me", bearer: lastK1.tok}), 401, "invalid_token")
	}
	if err := fv.verify(lastK1.tok); err == nil {
		t.Fatal("the foreign verifier still accepts a k1 token")
	}

	out, err = cli("keys", "list")
	if err != nil || !regexp.MustCompile(`(?m)^k2\s+EdDSA\s+signing`).MatchString(out) || !regexp.MustCompile(`(?m)^k1\s+EdDSA\s+retired`).MatchString(out) {
		t.Fatalf("keys list: %v\n%s", err, out)
	}
	for _, in := range instances {
		if r := in.do(t, req{path: "/readyz"}); r.status != 200 {
			t.Fatalf("readyz on %s: %d %s", in.URL, r.status, r.body)
		}
	}
}

// TestKeyMissingOnOneInstance: an instance whose keys directory lacks the new
// key says so on /readyz and in the rotate answer, and keeps serving.
func TestKeyMissingOnOneInstance(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	shared := keysDir(t)
	lonely := t.TempDir()
	data, err := os.ReadFile(shared + "/k1.pem")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(lonely+"/k1.pem", data, 0o600); err != nil {
		t.Fatal(err)
	}
	common := []string{"TOKENSHIFT_STORAGE_REDIS_URL=" + srv.URL(), "TOKENSHIFT_JWT_ROTATION_RELOAD_INTERVAL=200ms"}
	a := start(t, append(common, "TOKENSHIFT_JWT_KEYS_DIR="+shared)...)
	b := start(t, append(common, "TOKENSHIFT_JWT_KEYS_DIR="+lonely)...)

	cmd := exec.Command(binary, "keys", "rotate", "--dir", shared, "--generate", "--kid", "k2", "--server", a.URL, "--email", opsEmail)
	cmd.Env = append(os.Environ(), "TOKENSHIFT_ADMIN_PASSWORD="+opsPass)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "PROBLEM") || !strings.Contains(string(out), "k2") {
		t.Fatalf("the rotate answer should name the instance lacking k2: %v\n%s", err, out)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := b.do(t, req{path: "/readyz"})
		if r.status == 503 {
			expectProblem(t, r, 503, "keys_missing")
			if !strings.Contains(string(r.body), "k2") {
				t.Fatalf("readyz does not name the key: %s", r.body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("b still ready without k2: %d %s", r.status, r.body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if r := a.do(t, req{path: "/readyz"}); r.status != 200 {
		t.Fatalf("a: %d %s", r.status, r.body)
	}
	// b keeps working: logins and tokens accepted by both.
	tok := b.login(t, aliceEmail, alicePass, "mobile").json(t)["access_token"].(string)
	for _, in := range []*instance{a, b} {
		if r := in.do(t, req{path: "/auth/me", bearer: tok}); r.status != 200 {
			t.Fatalf("%s: %d %s", in.URL, r.status, r.body)
		}
	}
	if !strings.Contains(b.logs.String(), "missing from jwt.keys_dir") {
		t.Fatalf("b did not log the missing key:\n%s", b.logs.String())
	}
}

// TestKeyRotationInMemory: one instance on the in-memory store rotates
// through the admin API just the same.
func TestKeyRotationInMemory(t *testing.T) {
	t.Parallel()
	keys := keysDir(t)
	in := start(t, "TOKENSHIFT_JWT_KEYS_DIR="+keys, "TOKENSHIFT_JWT_ROTATION_PUBLISH_DELAY=1s", "TOKENSHIFT_JWT_ROTATION_RELOAD_INTERVAL=200ms")
	if cc := in.do(t, req{path: "/.well-known/jwks.json"}).header.Get("Cache-Control"); cc != "public, max-age=1" {
		t.Fatalf("JWKS Cache-Control = %q; the max-age must not exceed the publish delay", cc)
	}
	ops := in.login(t, opsEmail, opsPass, "mobile").json(t)["access_token"].(string)
	expectProblem(t, in.do(t, req{method: "POST", path: "/admin/keys/rotate", bearer: ops, json: map[string]string{"kid": "k2"}}), 400, "unknown_key")
	if out, err := exec.Command(binary, "keys", "generate", "--dir", keys, "--kid", "k2").CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	r := in.do(t, req{method: "POST", path: "/admin/keys/rotate", bearer: ops, json: map[string]string{"reason": "memory"}})
	if r.status != 202 || r.json(t)["rotation"].(map[string]any)["kid"] != "k2" {
		t.Fatalf("rotate: %d %s", r.status, r.body)
	}
	if got := jwksKIDs(t, in); !slices.Equal(got, []string{"k1", "k2"}) {
		t.Fatalf("JWKS after rotate = %v", got)
	}
	if kid := tokenHeaderKID(in.login(t, aliceEmail, alicePass, "mobile").json(t)["access_token"].(string)); kid != "k1" {
		t.Fatalf("signed with %s during the publish delay", kid)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		kid := tokenHeaderKID(in.login(t, aliceEmail, alicePass, "mobile").json(t)["access_token"].(string))
		if kid == "k2" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still signing with %s\n%s", kid, in.logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	list := in.do(t, req{path: "/admin/keys", bearer: ops}).json(t)
	if list["signing"] != "k2" || list["rotation_in_progress"] != true {
		t.Fatalf("GET /admin/keys: %v", list)
	}
}
