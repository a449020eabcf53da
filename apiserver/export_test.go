package apiserver

// Plaintext makes cfg serve the API without TLS, authentication or
// authorization, for the benchmark that measures what those cost.
func Plaintext(cfg *Config) { cfg.plaintext = true }
