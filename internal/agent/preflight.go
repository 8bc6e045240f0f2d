package agent

import (
	"github.com/renewer/renewer/internal/acme"
	"github.com/renewer/renewer/internal/config"
)

// CheckCredential builds c's DNS provider (dns challenge only), contacting
// no CA: an error names what is missing. See CheckCredentials.
func CheckCredential(c config.Certificate) error {
	if c.Challenge.Type != config.ChallengeDNS || c.Challenge.DNS == nil {
		return nil
	}
	return acme.CheckDNS(*dnsRequest(c.Challenge.DNS))
}
