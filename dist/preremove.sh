#!/bin/sh
set -e
if [ -d /run/systemd/system ] && [ "$1" = remove ]; then
	systemctl stop authwatch.service || true
	systemctl disable authwatch.service >/dev/null || true
fi
