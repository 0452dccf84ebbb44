package dpkg

// Real Debian data used by the dpkg database tests (excerpts of Debian's
// packaging metadata).

// realStatusNginx is an excerpt of the dpkg status file of the
// bookworm-nginx test image (debian:bookworm with nginx-light installed by
// dpkg): six consecutive stanzas, byte for byte as dpkg wrote them, sorted.
const realStatusNginx = `Package: nginx
Status: install ok installed
Priority: optional
Section: httpd
Installed-Size: 1331
Maintainer: Debian Nginx Maintainers <pkg-nginx-maintainers@alioth-lists.debian.net>
Architecture: amd64
Version: 1.22.1-9+deb12u9
Replaces: nginx-core (<< 1.22.1-6~), nginx-extras (<< 1.22.1-6~), nginx-light (<< 1.22.1-6~)
Provides: httpd, httpd-cgi, nginx-abi-1.22.1-7
Depends: libc6 (>= 2.34), libcrypt1 (>= 1:4.1.0), libpcre2-8-0 (>= 10.22), libssl3 (>= 3.0.0), zlib1g (>= 1:1.1.4), iproute2, nginx-common (<< 1.22.1-9+deb12u9.1~), nginx-common (>= 1.22.1-9+deb12u9)
Breaks: nginx-core (<< 1.22.1-6~), nginx-extras (<< 1.22.1-6~), nginx-light (<< 1.22.1-6~)
Description: small, powerful, scalable web/proxy server
 Nginx ("engine X") is a high-performance web and reverse proxy server
 created by Igor Sysoev. It can be used both as a standalone web server
 and as a proxy to reduce the load on back-end HTTP or mail servers.
Homepage: https://nginx.org

Package: nginx-common
Status: install ok installed
Priority: optional
Section: httpd
Installed-Size: 332
Maintainer: Debian Nginx Maintainers <pkg-nginx-maintainers@alioth-lists.debian.net>
Architecture: all
Multi-Arch: foreign
Source: nginx
Version: 1.22.1-9+deb12u9
Replaces: nginx (<< 1.22.1-8)
Depends: debconf (>= 0.5) | debconf-2.0
Suggests: fcgiwrap, nginx-doc, ssl-cert
Breaks: nginx (<< 1.22.1-8)
Conffiles:
 /etc/default/nginx 596fbc1f5712caaa02e8c799a4e2a01f
 /etc/init.d/nginx 290f6f12a12bc8e882bc5af46c1bfe7c
 /etc/logrotate.d/nginx b29112f9480a70fa7de2729ff39923e2
 /etc/nginx/fastcgi.conf 74e91892a9e591cde6d65c3e8e7e5fb2
 /etc/nginx/fastcgi_params d4fe70d397348c37f086219021ac9b0d
 /etc/nginx/koi-utf 3e338aca6a53a5420fc791b5ef86f64c
 /etc/nginx/koi-win bfa0b80381fed2b1dfcf617b0ba204ec
 /etc/nginx/mime.types 60d17ef2cb190ea97b74947b5d1a0ad6
 /etc/nginx/nginx.conf e5398edc0b51497dba606859fb13a86e
 /etc/nginx/proxy_params f981a958660df0c24906c5260d7e401c
 /etc/nginx/scgi_params 550f60006b87f280d3a1340396240d39
 /etc/nginx/sites-available/default f1f26aef86f90a484f3a2f46ccc46ff6
 /etc/nginx/snippets/fastcgi-php.conf 828e5bd1f3de7b3ef0e6856598b2a8c0
 /etc/nginx/snippets/snakeoil.conf 0a8bff8a55d8ec9d002e1b8460d2d64f
 /etc/nginx/uwsgi_params 0913e8f60373cfe818bc7402d4d5126d
 /etc/nginx/win-utf 0f39cbfca77d4f3bb5d33f009a514c71
 /etc/ufw/applications.d/nginx 3e24def79cf627acc2ab1b1bdfbc645c
Description: small, powerful, scalable web/proxy server - common files
 Nginx ("engine X") is a high-performance web and reverse proxy server
 created by Igor Sysoev. It can be used both as a standalone web server
 and as a proxy to reduce the load on back-end HTTP or mail servers.
 .
 This package contains base configuration files used by all versions of
 nginx.
Homepage: https://nginx.org

Package: nginx-light
Status: install ok installed
Priority: optional
Section: httpd
Installed-Size: 92
Maintainer: Debian Nginx Maintainers <pkg-nginx-maintainers@alioth-lists.debian.net>
Architecture: all
Source: nginx
Version: 1.22.1-9+deb12u9
Depends: libnginx-mod-http-echo (>= 1:0.63-4~), nginx (>= 1.22.1-9+deb12u9), nginx (<< 1.22.1-9+deb12u9.1~)
Description: nginx web/proxy server (basic version)
 Nginx ("engine X") is a high-performance web and reverse proxy server
 created by Igor Sysoev. It can be used both as a standalone web server
 and as a proxy to reduce the load on back-end HTTP or mail servers.
 .
 This metapackage provides a very light version of nginx with only the
 minimal set of features and modules.
 .
 STANDARD HTTP MODULES: Core, Access, Auth Basic, Auto Index, Empty GIF,
 FastCGI, Map, Proxy, Rewrite, SCGI, uWSGI.
 .
 OPTIONAL HTTP MODULES: Auth Request, Charset, Gzip, Gzip Precompression,
 Headers, HTTP/2, Index, Log, Real IP, Slice, SSI, SSL, Stub Status, Thread
 Pool, WebDAV, Upstream.
 .
 THIRD PARTY MODULES: Echo.
Homepage: https://nginx.org

Package: openssl
Status: install ok installed
Priority: optional
Section: utils
Installed-Size: 2310
Maintainer: Debian OpenSSL Team <pkg-openssl-devel@alioth-lists.debian.net>
Architecture: amd64
Multi-Arch: foreign
Version: 3.0.20-1~deb12u2
Depends: libc6 (>= 2.34), libssl3 (>= 3.0.9)
Suggests: ca-certificates
Conffiles:
 /etc/ssl/openssl.cnf fe1993ec22f6b8a46cb9706acd8fc68f
Description: Secure Sockets Layer toolkit - cryptographic utility
 This package is part of the OpenSSL project's implementation of the SSL
 and TLS cryptographic protocols for secure communication over the
 Internet.
 .
 It contains the general-purpose command line binary /usr/bin/openssl,
 useful for cryptographic operations such as:
  * creating RSA, DH, and DSA key parameters;
  * creating X.509 certificates, CSRs, and CRLs;
  * calculating message digests;
  * encrypting and decrypting with ciphers;
  * testing SSL/TLS clients and servers;
  * handling S/MIME signed or encrypted mail.
Homepage: https://www.openssl.org/

Package: passwd
Status: install ok installed
Priority: required
Section: admin
Installed-Size: 2827
Maintainer: Shadow package maintainers <pkg-shadow-devel@lists.alioth.debian.org>
Architecture: amd64
Multi-Arch: foreign
Source: shadow
Version: 1:4.13+dfsg1-1+deb12u2
Depends: libaudit1 (>= 1:2.2.1), libc6 (>= 2.36), libcrypt1 (>= 1:4.1.0), libpam0g (>= 0.99.7.1), libselinux1 (>= 3.1~), libsemanage2 (>= 2.0.32), libpam-modules
Recommends: sensible-utils
Conffiles:
 /etc/default/useradd e03965d134c26725cbc51a57969da6c9
 /etc/pam.d/chfn 4d466e00a348ba426130664d795e8afa
 /etc/pam.d/chpasswd 9900720564cb4ee98b7da29e2d183cb2
 /etc/pam.d/chsh a6e9b589e90009334ffd030d819290a6
 /etc/pam.d/newusers 1454e29bfa9f2a10836563e76936cea5
 /etc/pam.d/passwd eaf2ad85b5ccd06cceb19a3e75f40c63
Description: change and administer password and group data
 This package includes passwd, chsh, chfn, and many other programs to
 maintain password and group data.
 .
 Shadow passwords are supported.  See /usr/share/doc/passwd/README.Debian
Homepage: https://github.com/shadow-maint/shadow

Package: perl-base
Essential: yes
Status: install ok installed
Priority: required
Section: perl
Installed-Size: 7639
Maintainer: Niko Tyni <ntyni@debian.org>
Architecture: amd64
Source: perl
Version: 5.36.0-7+deb12u3
Replaces: libfile-path-perl (<< 2.18), libfile-temp-perl (<< 0.2311), libio-socket-ip-perl (<< 0.41), libscalar-list-utils-perl (<< 1:1.62), libsocket-perl (<< 2.033), libxsloader-perl (<< 0.31), perl (<< 5.10.1-12), perl-modules (<< 5.20.1-3)
Provides: libfile-path-perl (= 2.18), libfile-temp-perl (= 0.2311), libio-socket-ip-perl (= 0.41), libscalar-list-utils-perl (= 1:1.62), libsocket-perl (= 2.033), libxsloader-perl (= 0.31), perlapi-5.36.0
Pre-Depends: libc6 (>= 2.35), libcrypt1 (>= 1:4.1.0), dpkg (>= 1.17.17)
Suggests: perl, sensible-utils
Breaks: amanda-common (<< 1:3.3.9-2), backuppc (<< 4.4.0-7~), bucardo (<< 5.5.0-1.1), debconf (<< 1.5.61), dh-haskell (<< 0.3), duck (<< 0.14.1), intltool (<< 0.51.0-4), kio-perldoc (<< 20.04.1-1), latexml (<< 0.8.4-2), libdevel-mat-dumper-perl (<< 0.42-3), libencode-arabic-perl (<< 14.2-2), libexception-class-perl (<< 1.42), libfile-path-perl (<< 2.18), libfile-spec-perl (<< 3.8400), libfile-temp-perl (<< 0.2311), libio-socket-ip-perl (<< 0.41), libmp3-tag-perl (<< 1.13-1.2), libsbuild-perl (<< 0.67.0-1), libscalar-list-utils-perl (<< 1:1.62), libsocket-perl (<< 2.033), libxsloader-perl (<< 0.31), mailagent (<< 1:3.1-81-2), perl (<< 5.36.0~), perl-modules (<< 5.36.0~), pod2pdf (<< 0.42-5.1), slic3r (<< 1.2.9+dfsg-6.1), slic3r-prusa (<< 1.37.0+dfsg-1.1), texinfo (<< 6.1.0.dfsg.1-8)
Conflicts: defoma (<< 0.11.12), doc-base (<< 0.10.3), mono-gac (<< 2.10.8.1-3), safe-rm (<< 0.8), update-inetd (<< 4.41)
Description: minimal Perl system
 Perl is a scripting language used in many system scripts and utilities.
 .
 This package provides a Perl interpreter and the small subset of the
 standard run-time library required to perform basic tasks. For a full
 Perl installation, install "perl" (and its dependencies, "perl-modules-5.36"
 and "perl-doc").
Homepage: http://dev.perl.org/perl5/

`

// realStatusLibssl3 is the libssl3 stanza of the same status file
// (Multi-Arch: same, no conffiles).
const realStatusLibssl3 = `Package: libssl3
Status: install ok installed
Priority: optional
Section: libs
Installed-Size: 6030
Maintainer: Debian OpenSSL Team <pkg-openssl-devel@alioth-lists.debian.net>
Architecture: amd64
Multi-Arch: same
Source: openssl
Version: 3.0.20-1~deb12u2
Depends: libc6 (>= 2.34)
Description: Secure Sockets Layer toolkit - shared libraries
 This package is part of the OpenSSL project's implementation of the SSL
 and TLS cryptographic protocols for secure communication over the
 Internet.
 .
 It provides the libssl and libcrypto shared libraries.
Homepage: https://www.openssl.org/
`

// realControlNginxCommon is the control file of
// nginx-common_1.22.1-9+deb12u11_all.deb, in the order dpkg-gencontrol
// wrote it.
const realControlNginxCommon = `Package: nginx-common
Source: nginx
Version: 1.22.1-9+deb12u11
Architecture: all
Maintainer: Debian Nginx Maintainers <pkg-nginx-maintainers@alioth-lists.debian.net>
Installed-Size: 333
Depends: debconf (>= 0.5) | debconf-2.0
Suggests: fcgiwrap, nginx-doc, ssl-cert
Breaks: nginx (<< 1.22.1-8)
Replaces: nginx (<< 1.22.1-8)
Section: httpd
Priority: optional
Multi-Arch: foreign
Homepage: https://nginx.org
Description: small, powerful, scalable web/proxy server - common files
 Nginx ("engine X") is a high-performance web and reverse proxy server
 created by Igor Sysoev. It can be used both as a standalone web server
 and as a proxy to reduce the load on back-end HTTP or mail servers.
 .
 This package contains base configuration files used by all versions of
 nginx.
`

// realControlLibssl3 is the control file of
// libssl3_3.0.22-1~deb12u2_amd64.deb.
const realControlLibssl3 = `Package: libssl3
Source: openssl
Version: 3.0.22-1~deb12u2
Architecture: amd64
Maintainer: Debian OpenSSL Team <pkg-openssl-devel@alioth-lists.debian.net>
Installed-Size: 6042
Depends: libc6 (>= 2.34)
Section: libs
Priority: optional
Multi-Arch: same
Homepage: https://www.openssl.org/
Description: Secure Sockets Layer toolkit - shared libraries
 This package is part of the OpenSSL project's implementation of the SSL
 and TLS cryptographic protocols for secure communication over the
 Internet.
 .
 It provides the libssl and libcrypto shared libraries.
`

// realDistrolessLibssl3 is var/lib/dpkg/status.d/libssl3 of the distroless
// bookworm test image (gcr.io/distroless/base-debian12).
const realDistrolessLibssl3 = `Package: libssl3
Status: install ok installed
Source: openssl
Version: 3.0.20-1~deb12u2
Architecture: amd64
Maintainer: Debian OpenSSL Team <pkg-openssl-devel@alioth-lists.debian.net>
Installed-Size: 6030
Depends: libc6 (>= 2.34)
Section: libs
Priority: optional
Multi-Arch: same
Homepage: https://www.openssl.org/
Description: Secure Sockets Layer toolkit - shared libraries
 This package is part of the OpenSSL project's implementation of the SSL
 and TLS cryptographic protocols for secure communication over the
 Internet.
 .
 It provides the libssl and libcrypto shared libraries.
`
