# The Debian package: `cpack -G DEB` in a build configured with
# -DCMAKE_INSTALL_PREFIX=/usr (scripts/build does) writes
# bpfix_VERSION_ARCH.deb with what `cmake --install` installs, stripped,
# depending on the runtime libraries only (dpkg-shlibdeps). The units are
# installed, not enabled (cmake/debian/postinst says why); the configs are
# conffiles; purge removes the services' state and logs. tests/package
# installs, runs and purges it under systemd in the VM.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME bpfix)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "IPFIX flow exporter (eBPF) and collector")
string(CONCAT CPACK_PACKAGE_DESCRIPTION
       "bpfix-exporter meters every flow of a host's interfaces with TC eBPF\n"
       "programs, with DNS, TCP RTT and kernel packet drops attached, and exports\n"
       "them as IPFIX (RFC 7011) over SCTP, TCP or UDP; it also captures packets\n"
       "on demand. bpfix-collector receives IPFIX from many exporters into\n"
       "rotated files.")
set(CPACK_PACKAGE_CONTACT "bpfix developers <bpfix@invalid>")
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_STRIP_FILES ON)
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
# dpkg keeps an edited config across upgrades and removes it on purge.
file(WRITE ${CMAKE_BINARY_DIR}/debian/conffiles
     "${CMAKE_INSTALL_FULL_SYSCONFDIR}/bpfix/exporter.toml\n${CMAKE_INSTALL_FULL_SYSCONFDIR}/bpfix/collector.toml\n")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${CMAKE_BINARY_DIR}/debian/conffiles ${CMAKE_SOURCE_DIR}/cmake/debian/postinst
    ${CMAKE_SOURCE_DIR}/cmake/debian/prerm ${CMAKE_SOURCE_DIR}/cmake/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
