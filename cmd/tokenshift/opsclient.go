package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tokenshift/tokenshift/featureflags"
	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/httpapi"
)

// opsFlags are how operator commands reach and authenticate to the admin API.
type opsFlags struct {
	server      string
	email       string
	password    string
	loginClient string
	token       string
	jsonOut     bool
}

func (o *opsFlags) register(cmd *cobra.Command) {
	f := cmd.PersistentFlags()
	f.StringVar(&o.server, "server", envOr("TOKENSHIFT_SERVER", "http://localhost:8080"), "tokenshift base URL (env TOKENSHIFT_SERVER)")
	f.StringVar(&o.email, "email", envOr("TOKENSHIFT_ADMIN_EMAIL", ""), "operator email (env TOKENSHIFT_ADMIN_EMAIL)")
	f.StringVar(&o.password, "password", "", "operator password (prefer env TOKENSHIFT_ADMIN_PASSWORD: flags show up in ps)")
	f.StringVar(&o.loginClient, "login-client", envOr("TOKENSHIFT_ADMIN_CLIENT", ""), "client id to log in with (env TOKENSHIFT_ADMIN_CLIENT); default: the server's default client. The command's own requests are counted under it, so register a service client for operators to keep them out of your apps' figures")
	f.StringVar(&o.token, "token", "", "operator access token instead of email/password (env TOKENSHIFT_ADMIN_TOKEN)")
	f.BoolVar(&o.jsonOut, "json", false, "print the raw JSON answer")
}

// opsClient is a logged-in admin API client: bearer token when the phase
// issues tokens, else the session cookie with its CSRF token.
type opsClient struct {
	base   string
	http   *http.Client
	bearer string
	csrf   string
	// ownLogin: the client logged in with email and password, so the login
	// is its own to end (a --token belongs to whoever issued it).
	ownLogin bool
}

// apiError is a problem+json answer from the server.
type apiError struct {
	Status int
	Code   auth.Code
	Detail string
	// Figures are the usage figures a guard_refused problem carries as an
	// extension member; nil for every other problem.
	Figures *featureflags.GuardFigures
}

// Error is what main prints: the code and detail come from the server, so
// they are made printable (a newline in a detail shows as \n).
func (e *apiError) Error() string {
	return fmt.Sprintf("%s (HTTP %d): %s", printable(string(e.Code)), e.Status, printable(e.Detail))
}

// problemError reads an error answer into httpapi.Problem, the type the
// server encodes problems with. A field of the wrong type is skipped, as
// before; an answer that is no problem at all (a proxy's HTML page) is
// kept as text under the code http_error.
func problemError(status int, data []byte) *apiError {
	e := &apiError{Status: status}
	var p httpapi.Problem
	var typeErr *json.UnmarshalTypeError
	if err := json.Unmarshal(data, &p); err == nil || errors.As(err, &typeErr) {
		e.Code, e.Detail = p.Code, p.Detail
	}
	if e.Code == "" {
		e.Code, e.Detail = "http_error", strings.TrimSpace(string(data))
		return e
	}
	// Extension members sit beside the standard ones (RFC 9457 section
	// 3.2); httpapi.Problem keeps them in Extra, which JSON does not fill.
	var ext struct {
		Figures *featureflags.GuardFigures `json:"figures"`
	}
	if json.Unmarshal(data, &ext) == nil {
		e.Figures = ext.Figures
	}
	return e
}

// loginRequest is the body of POST /auth/login.
type loginRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	ClientID string `json:"client_id,omitempty"`
}

// loginAnswer is what the CLI needs of the login answer. The server's type
// (loginResponse in internal/httpapi) is not exported; these two fields are
// all an operator command uses.
type loginAnswer struct {
	AccessToken string `json:"access_token"`
	CSRFToken   string `json:"csrf_token"`
}

// withClient logs in (or takes --token), runs fn, and always ends the login
// it made: every operator command goes through it, so none can leave logins
// behind.
func (o *opsFlags) withClient(cmd *cobra.Command, fn func(c *opsClient) error) error {
	c, err := o.login(cmd.Context())
	if err != nil {
		return err
	}
	defer c.logout(cmd)
	return fn(c)
}

func (o *opsFlags) login(ctx context.Context) (*opsClient, error) {
	jar, _ := cookiejar.New(nil)
	c := &opsClient{base: strings.TrimRight(o.server, "/"), http: &http.Client{Timeout: 15 * time.Second, Jar: jar}}
	token := o.token
	if token == "" {
		token = envOr("TOKENSHIFT_ADMIN_TOKEN", "")
	}
	if token != "" {
		c.bearer = token
		return c, nil
	}
	pw := o.password
	if pw == "" {
		pw = envOr("TOKENSHIFT_ADMIN_PASSWORD", "")
	}
	if o.email == "" || pw == "" {
		return nil, usageError{errors.New("give --email and TOKENSHIFT_ADMIN_PASSWORD (or --token / TOKENSHIFT_ADMIN_TOKEN)")}
	}
	var login loginAnswer
	body := loginRequest{Email: o.email, Password: pw, ClientID: o.loginClient}
	if err := c.call(ctx, "POST", "/auth/login", body, &login); err != nil {
		return nil, fmt.Errorf("login to %s: %w", c.base, err)
	}
	c.ownLogin = true
	c.bearer, c.csrf = login.AccessToken, login.CSRFToken
	return c, nil
}

// logout ends the login the command made, so repeated commands do not pile up
// sessions and token families on the server. It runs after the command's
// result (or error) is known: a failure is only a warning.
func (c *opsClient) logout(cmd *cobra.Command) {
	if !c.ownLogin {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(cmd.Context()), 5*time.Second)
	defer cancel()
	if err := c.call(ctx, "POST", "/auth/logout", nil, nil); err != nil {
		outf(cmd.ErrOrStderr(), "tokenshift: warning: logout from %s failed, the login stays until it expires: %v\n", c.base, err)
	}
}

func (c *opsClient) call(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+c.bearer)
	} else if c.csrf != "" {
		req.Header.Set("X-CSRF-Token", c.csrf)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 400 {
		return problemError(resp.StatusCode, data)
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if raw, ok := out.(*json.RawMessage); ok {
		*raw = data
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("unexpected answer from %s%s: %w", c.base, path, err)
	}
	return nil
}

// printJSON prints the server's answer indented, escaped for the terminal
// (printableJSON); an answer that is not JSON is printed as escaped text.
func printJSON(w io.Writer, raw json.RawMessage) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, bytes.TrimSpace(raw), "", "  "); err != nil {
		_, err = io.WriteString(w, printable(string(raw))+"\n")
		return err
	}
	buf.WriteByte('\n')
	_, err := w.Write(printableJSON(buf.Bytes()))
	return err
}

// fetch calls the admin API and prints the answer: with --json as the
// server sent it, else through print, which decodes it into the server's
// own type (decodeAnswer) and writes it for people.
func (o *opsFlags) fetch(cmd *cobra.Command, method, path string, body any, print func(io.Writer, json.RawMessage) error) error {
	return o.withClient(cmd, func(c *opsClient) error {
		var raw json.RawMessage
		if err := c.call(cmd.Context(), method, path, body, &raw); err != nil {
			return err
		}
		if o.jsonOut {
			return printJSON(cmd.OutOrStdout(), raw)
		}
		return print(cmd.OutOrStdout(), raw)
	})
}

// decodeAnswer decodes an answer into v, a type the server encodes it
// with; an answer that does not fit is refused as an unexpected "what".
func decodeAnswer(raw json.RawMessage, v any, what string) error {
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("unexpected %s: %w", what, err)
	}
	return nil
}

// reasonBody is the body of the admin calls that take only a reason
// (rollback, suspend).
type reasonBody struct {
	Reason string `json:"reason"`
}

// wireTime writes a time as the server's JSON carries it (RFC 3339 with
// the sender's offset, fractions only when there are any): the CLI decodes
// answers into the server's types and still prints what it received.
func wireTime(t time.Time) string { return t.Format(time.RFC3339Nano) }

// wireTimeOr is wireTime, or none for a time the answer left out.
func wireTimeOr(t *time.Time, none string) string {
	if t == nil {
		return none
	}
	return wireTime(*t)
}
