#!/bin/sh
# Create the system user authwatch runs as, before its files are unpacked.
set -e
if ! getent group authwatch >/dev/null; then
	addgroup --system authwatch
fi
if ! getent passwd authwatch >/dev/null; then
	adduser --system --ingroup authwatch --home /var/lib/authwatch --no-create-home \
		--shell /usr/sbin/nologin --gecos "authwatch" authwatch
fi
