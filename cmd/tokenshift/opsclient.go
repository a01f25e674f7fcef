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
	Code   string
	Detail string
	Body   map[string]any
}

// Error is what main prints: the code and detail come from the server, so
// they are made printable (a newline in a detail shows as \n).
func (e *apiError) Error() string {
	return fmt.Sprintf("%s (HTTP %d): %s", printable(e.Code), e.Status, printable(e.Detail))
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
	var login map[string]any
	body := map[string]string{"email": o.email, "password": pw}
	if o.loginClient != "" {
		body["client_id"] = o.loginClient
	}
	if err := c.call(ctx, "POST", "/auth/login", body, &login); err != nil {
		return nil, fmt.Errorf("login to %s: %w", c.base, err)
	}
	c.ownLogin = true
	if at, _ := login["access_token"].(string); at != "" {
		c.bearer = at
	}
	c.csrf, _ = login["csrf_token"].(string)
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
		e := &apiError{Status: resp.StatusCode}
		if json.Unmarshal(data, &e.Body) == nil {
			e.Code, _ = e.Body["code"].(string)
			e.Detail, _ = e.Body["detail"].(string)
		}
		if e.Code == "" {
			e.Code, e.Detail = "http_error", strings.TrimSpace(string(data))
		}
		return e
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
