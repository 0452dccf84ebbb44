package registry

import "strconv"

// formatBytes writes n in binary units, as messages show sizes ("1.5 GiB").
func formatBytes(n int64) string {
	const unit = 1024
	if n < unit && n > -unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	f := float64(n)
	suffixes := []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	i := -1
	for (f >= unit || f <= -unit) && i < len(suffixes)-1 {
		f /= unit
		i++
	}
	return strconv.FormatFloat(f, 'f', 1, 64) + " " + suffixes[i]
}
