package cacerts

// Paths for the external test package (real_test.go), which is external
// because it fetches packages through internal/patch/apt, and apt imports
// this package.
const (
	EtcCerts  = etcCerts
	CertsConf = certsConf
	LocalDir  = localDir
)
