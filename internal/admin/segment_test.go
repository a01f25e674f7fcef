package admin_test

import (
	"io"
	"net/http/httptest"
	"testing"

	"github.com/gofiber/fiber/v2"
)

// TestAdminGroupSegmentBoundary: the admin API's authentication covers
// /admin and /admin/..., never /administrator or /admin-panel, which a
// reverse proxy route may serve for the app.
func TestAdminGroupSegmentBoundary(t *testing.T) {
	app, _ := usageApp(t, io.Discard)
	// Stands for the gateway, mounted after the admin API.
	app.Use(func(c *fiber.Ctx) error { return c.Status(200).SendString("app:" + c.Path()) })
	for _, tc := range []struct {
		path string
		want int
	}{
		{path: "/admin/usage", want: 401},
		{path: "/ADMIN/audit", want: 401},
		{path: "/admin/no-such-thing", want: 401},
		{path: "/administrator", want: 200},
		{path: "/admin-panel/x", want: 200},
		{path: "/adminx", want: 200},
	} {
		t.Run(tc.path, func(t *testing.T) {
			res, err := app.Test(httptest.NewRequest("GET", tc.path, nil), -1)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			if res.StatusCode != tc.want {
				t.Fatalf("status = %d, want %d (%s)", res.StatusCode, tc.want, body)
			}
			if tc.want == 200 && res.Header.Get("Cache-Control") != "" {
				t.Errorf("the app's answer got Cache-Control %q", res.Header.Get("Cache-Control"))
			}
		})
	}
}
