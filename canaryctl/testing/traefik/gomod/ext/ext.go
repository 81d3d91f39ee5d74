// Package ext holds the extension points Traefik embeds in its dynamic HTTP configuration.
// Upstream builds may add fields here; this stand-in adds none, so the configuration is
// exactly Traefik's open-source one.
package ext

// HTTP is embedded in dynamic.HTTPConfiguration.
type HTTP struct{}

// Router is embedded in dynamic.Router.
type Router struct{}
