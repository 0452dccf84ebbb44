// Package version orders package versions per ecosystem (Debian "deb",
// Alpine "apk", RPM "rpm") with a Comparer each, built on knqyf263's
// go-deb-version, go-apk-version and go-rpm-version; For picks one by name.
package version
