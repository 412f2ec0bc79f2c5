#!/bin/sh
# Enable the service; start or restart it only when it is configured, so a
# first install does not start with the example's made-up NAS.
set -e
install -d -o authwatch -g authwatch -m 0750 /var/lib/authwatch
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload
	systemctl enable authwatch.service >/dev/null
	if systemctl is-active --quiet authwatch.service; then
		systemctl restart authwatch.service
	else
		echo "authwatch: edit /etc/authwatch/authwatch.toml, check it with"
		echo "  authwatch check -config /etc/authwatch/authwatch.toml -connect"
		echo "then: systemctl start authwatch"
	fi
fi
