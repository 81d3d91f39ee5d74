// Package dns replaces lego's generated DNS-01 provider list in canaryctl's Traefik build:
// the provider SDKs are not all served by the Go module proxy, and the tests never request
// certificates. Copied to lego/providers/dns/ by canaryctl.testing.traefik.build.
package dns

import (
	"fmt"

	"github.com/go-acme/lego/v5/challenge"
)

// NewDNSChallengeProviderByName refuses every provider: none is built in.
func NewDNSChallengeProviderByName(name string) (challenge.Provider, error) {
	return nil, fmt.Errorf("DNS-01 provider %q is not part of this Traefik build", name)
}
