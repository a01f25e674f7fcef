package httpapi

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"github.com/valyala/fasthttp"

	"github.com/tokenshift/tokenshift/internal/auth"
)

// Refusals of requests whose meaning is ambiguous, made before Fiber routes
// them. Each wraps one of these for the logs; the client gets a problem.
var (
	// errFraming: the body length cannot be determined reliably (RFC 9112
	// §6.3). fasthttp takes the last of two Content-Length headers and lets
	// Transfer-Encoding override Content-Length; a proxy in front may pick
	// the other one, and the bytes they disagree on become a second,
	// smuggled request.
	errFraming = errors.New("ambiguous message framing")
	// errTwoAuthorizations: which credential is meant depends on who reads
	// the request. authn reads the first Authorization, and the reverse
	// proxy would pass the others to the upstream next to the identity
	// tokenshift authenticated.
	errTwoAuthorizations = errors.New("more than one Authorization header")
	// errHost: no Host, or two (RFC 9112 §3.2). The same-origin check, the
	// gateway's routing and X-Forwarded-Host read the host, and a proxy in
	// front may have read the other one.
	errHost = errors.New("missing or repeated Host")
	// errMethod: a method Fiber does not route (methods are case-sensitive,
	// so "post" is one). Fiber answers those itself, as plain text without
	// any of our headers.
	errMethod = errors.New("unsupported method")
)

// guardRequests runs before Fiber's handler on every request the server
// reads, whatever route it is for (API, admin, forward-auth, reverse proxy):
// it refuses what guardedHeaders and the method check find, as problem+json
// with the headers of every answer, through the same error handler as the
// rest. A framing refusal closes the connection, since whatever fasthttp
// read as this request's body, or left for the next one, cannot be trusted.
func (s *Server) guardRequests(next fasthttp.RequestHandler) fasthttp.RequestHandler {
	methods := s.App.Config().RequestMethods
	return func(ctx *fasthttp.RequestCtx) {
		err := checkMethod(ctx.Method(), methods)
		if err == nil {
			// An absolute-form target names the host itself (RFC 9112
			// §3.2.2), so only an origin-form one needs the Host header.
			h := &ctx.Request.Header
			err = guardedHeaders(h.RawHeaders(), h.IsHTTP11() && bytes.HasPrefix(h.RequestURI(), []byte("/")))
		}
		if err == nil {
			next(ctx)
			return
		}
		if errors.Is(err, errFraming) {
			ctx.SetConnectionClose()
		}
		c := s.App.AcquireCtx(ctx)
		defer s.App.ReleaseCtx(c)
		s.commonHeaders(c)
		s.log.Debug("request refused before routing", "error", err, "request_id", requestID(c))
		if herr := s.App.ErrorHandler(c, err); herr != nil {
			_ = c.SendStatus(fasthttp.StatusInternalServerError)
		}
	}
}

// checkMethod refuses a method Fiber would not route: 400 when it is not
// even a token (RFC 9110 §9.1), 501 when it is one tokenshift does not
// implement (RFC 9110 §15.6.2; methods are case-sensitive). The method is
// not repeated: it is the client's text.
func checkMethod(m []byte, known []string) error {
	for _, k := range known {
		if string(m) == k { // no allocation: this runs on every request
			return nil
		}
	}
	token := len(m) > 0
	for _, b := range m {
		token = token && isTChar(b)
	}
	if !token {
		return auth.Wrap(errMethod, auth.CodeInvalidRequest, "the request method is not a valid token")
	}
	return auth.Wrap(errMethod, auth.CodeNotImplemented, "the request method is not implemented here (methods are case-sensitive: POST, not post)")
}

// guardedHeaders reads the header block exactly as it was received (fasthttp
// keeps only the last Content-Length and one Transfer-Encoding, and drops
// the rest) and refuses, with 400:
//   - more than one Content-Length, or one holding a list ("5, 5");
//   - Transfer-Encoding together with Content-Length, or a Transfer-Encoding
//     whose last coding is not chunked or that applies chunked twice;
//   - a folded header line (obs-fold), which parsers unfold differently;
//   - more than one Authorization;
//   - more than one Host, or none when needHost (RFC 9112 §3.2).
func guardedHeaders(raw []byte, needHost bool) error {
	var contentLengths, authorizations, hosts int
	var codings [][]byte
	for len(raw) > 0 {
		var line []byte
		line, raw, _ = bytes.Cut(raw, []byte{'\n'})
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if len(line) == 0 {
			break // the blank line that ends the header block
		}
		if line[0] == ' ' || line[0] == '\t' {
			return auth.Wrap(fmt.Errorf("%w: obs-fold", errFraming), auth.CodeInvalidRequest,
				"a folded header line (obs-fold) is not accepted (RFC 9112 §5.2); the connection is closed")
		}
		name, value, ok := bytes.Cut(line, []byte{':'})
		if !ok {
			continue // fasthttp refuses or skips such lines itself
		}
		switch {
		case headerIs(name, "Content-Length"):
			contentLengths++
			if bytes.IndexByte(value, ',') >= 0 {
				return framingError("a Content-Length list")
			}
		case headerIs(name, "Transfer-Encoding"):
			for _, c := range bytes.Split(value, []byte{','}) {
				if c = bytes.Trim(c, " \t"); len(c) > 0 {
					codings = append(codings, c)
				}
			}
			if len(codings) == 0 {
				return framingError("an empty Transfer-Encoding")
			}
		case headerIs(name, "Authorization"):
			authorizations++
		case headerIs(name, "Host"):
			hosts++
		}
	}
	switch {
	case contentLengths > 1:
		return framingError("more than one Content-Length")
	case len(codings) > 0 && contentLengths > 0:
		return framingError("Transfer-Encoding together with Content-Length")
	case len(codings) > 0 && !bytes.EqualFold(codings[len(codings)-1], []byte("chunked")):
		return framingError("a Transfer-Encoding whose last coding is not chunked")
	case slices.IndexFunc(codings[:max(len(codings)-1, 0)], func(c []byte) bool { return bytes.EqualFold(c, []byte("chunked")) }) >= 0:
		return framingError("chunked applied more than once")
	case authorizations > 1:
		return auth.Wrap(errTwoAuthorizations, auth.CodeInvalidRequest, "send one credential: the request has more than one authorization header")
	case hosts > 1 || (hosts == 0 && needHost):
		return auth.Wrap(errHost, auth.CodeInvalidRequest, "an HTTP/1.1 request has exactly one Host header (RFC 9112 §3.2)")
	}
	return nil
}

func framingError(what string) error {
	return auth.Wrap(fmt.Errorf("%w: %s", errFraming, what), auth.CodeInvalidRequest,
		"the request's length is ambiguous: "+what+" (RFC 9112 §6.3); the connection is closed")
}

func headerIs(name []byte, want string) bool {
	return bytes.EqualFold(bytes.TrimRight(name, " \t"), []byte(want))
}

// isTChar: RFC 9110 §5.6.2 token characters.
func isTChar(b byte) bool {
	switch {
	case b >= 'a' && b <= 'z', b >= 'A' && b <= 'Z', b >= '0' && b <= '9':
		return true
	}
	return bytes.IndexByte([]byte("!#$%&'*+-.^_`|~"), b) >= 0
}
