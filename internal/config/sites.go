package config

import "time"

// validateSites checks the registered-sites variables.
func (c *Config) validateSites(bad func(name, format string, args ...any)) {
	if c.SitesToken.Set() && len(c.SitesToken.Reveal()) < 16 {
		bad("SITES_TOKEN", "is shorter than 16 characters")
	}
	if c.SitesInterval < time.Second {
		bad("SITES_INTERVAL", "%s is shorter than 1s", c.SitesInterval)
	}
	if c.SitesPollInterval < 10*time.Second {
		bad("SITES_POLL_INTERVAL", "%s is shorter than 10s", c.SitesPollInterval)
	}
	if c.SitesFailAfter < 1 || c.SitesFailAfter > 100 {
		bad("SITES_FAIL_AFTER", "%d is not between 1 and 100", c.SitesFailAfter)
	}
}
