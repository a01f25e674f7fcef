package admin

import (
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"errors"
	"io/fs"
	"path"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// web holds the dashboard: plain HTML, CSS and JavaScript ES modules (main.js
// imports the others by relative path), no build step and no CDN, so it works
// offline exactly as shipped.
//
//go:embed web
var web embed.FS

// contentSecurityPolicy forbids inline script and any third-party origin, and
// framing (clickjacking on the phase controls). script-src 'self' also covers
// the modules main.js imports, which come from the same origin.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// Dashboard URLs. The page lives at a directory URL so its asset references
// stay relative; assets sit under their own prefix so they can never shadow an
// API route such as /admin/usage.
const (
	dashboardPath = "/admin/"
	assetsPrefix  = "/admin/assets/"
)

// assetTypes lists what the dashboard may contain. A file of any other kind in
// web/ is not served: a stray file should not go out with a guessed type.
var assetTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
}

type asset struct {
	body        []byte
	contentType string
	etag        string
}

// loadAssets reads the embedded files once: they are a few kilobytes, and
// serving them from memory with a content ETag needs no file handles and no
// modification times (embed.FS has none).
func loadAssets(root fs.FS) (map[string]asset, error) {
	out := map[string]asset{}
	err := fs.WalkDir(root, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		ct, ok := assetTypes[path.Ext(p)]
		if !ok {
			return nil
		}
		b, err := fs.ReadFile(root, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		out[p] = asset{body: b, contentType: ct, etag: `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if _, ok := out["index.html"]; !ok {
		return nil, errors.New("admin: the embedded dashboard has no index.html")
	}
	return out, nil
}

// dashboardHeaders are sent with the page and every asset. The page talks only
// to its own origin and is never framed.
func dashboardHeaders(c *fiber.Ctx) {
	c.Set(fiber.HeaderContentSecurityPolicy, contentSecurityPolicy)
	c.Set(fiber.HeaderXFrameOptions, "DENY")
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	c.Set(fiber.HeaderReferrerPolicy, "no-referrer")
	c.Set("Cross-Origin-Opener-Policy", "same-origin")
	c.Set(fiber.HeaderCrossOriginResourcePolicy, "same-origin")
	// Revalidate every time: a new binary may ship a new page, and the ETag
	// makes the check a 304.
	c.Set(fiber.HeaderCacheControl, "no-cache")
}

func sendAsset(c *fiber.Ctx, a asset) error {
	dashboardHeaders(c)
	c.Set(fiber.HeaderETag, a.etag)
	if inm := c.Get(fiber.HeaderIfNoneMatch); inm != "" && etagMatches(inm, a.etag) {
		return c.SendStatus(fiber.StatusNotModified)
	}
	c.Set(fiber.HeaderContentType, a.contentType)
	return c.Send(a.body)
}

func etagMatches(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == etag || t == "*" {
			return true
		}
	}
	return false
}

// mountDashboard serves the page at /admin/ and its files under
// /admin/assets/. It is registered before the admin API group, whose
// middleware covers every /admin path, so these handlers must answer
// themselves (never c.Next) or the page would demand a credential.
func mountDashboard(app *fiber.App) {
	sub, err := fs.Sub(web, "web")
	if err != nil {
		panic(err) // the embed pattern above guarantees the directory
	}
	assets, err := loadAssets(sub)
	if err != nil {
		// Only a broken build can get here; the package tests load the
		// same files.
		panic(err)
	}
	index := assets["index.html"]
	// Without strict routing Fiber matches /admin and /admin/ alike, so one
	// handler tells them apart by the raw path: the page needs the trailing
	// slash for its relative asset URLs to resolve under /admin/.
	app.Get("/admin", func(c *fiber.Ctx) error {
		if c.Path() != dashboardPath {
			return c.Redirect(dashboardPath, fiber.StatusMovedPermanently)
		}
		return sendAsset(c, index)
	})
	app.Get(assetsPrefix+"*", func(c *fiber.Ctx) error {
		name := c.Params("*")
		a, ok := assets[name]
		if !ok || name == "index.html" {
			return fiber.NewError(fiber.StatusNotFound, "the dashboard has no file "+truncate(name, 64))
		}
		return sendAsset(c, a)
	})
}
