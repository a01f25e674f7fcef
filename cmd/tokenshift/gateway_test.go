package main

import (
	"slices"
	"testing"

	"github.com/tokenshift/tokenshift/internal/config"
	"github.com/tokenshift/tokenshift/internal/gateway"
)

// config.Validate refuses routes on tokenshift's own paths and the gateway
// refuses to proxy them at run time: both must name the same paths.
func TestReservedPrefixesAgree(t *testing.T) {
	if !slices.Equal(config.ReservedPrefixes, gateway.ReservedPrefixes) {
		t.Fatalf("config.ReservedPrefixes %v != gateway.ReservedPrefixes %v", config.ReservedPrefixes, gateway.ReservedPrefixes)
	}
}

// Every route config.Validate accepts, the gateway accepts too (a route the
// config passes but gateway.New refuses would stop the service at start).
func TestValidatedRoutesBuild(t *testing.T) {
	c, err := config.Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Proxy.Routes = []config.RouteConfig{
		{Prefix: "/", Upstream: "http://127.0.0.1:3000", Auth: "none"},
		{Prefix: "/authority", Upstream: "http://127.0.0.1:3000", Auth: "required"},
		{Prefix: "/app/", Upstream: "https://app.internal:8443/base/", Auth: "optional", StripPrefix: true},
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	g, err := gateway.New(gatewayConfig(c))
	if err != nil {
		t.Fatalf("gateway.New refused a validated config: %v", err)
	}
	g.Close()
}
