#!/bin/sh
# Put the AMI secret from the environment into manager.conf, and open AMI and
# PJSIP to the compose network (inside the container; the host publishes the
# ports on 127.0.0.1 only).
set -eu
: "${CALLCYCLE_AMI_SECRET:?CALLCYCLE_AMI_SECRET must be set}"
# containers on the compose network (RFC 1918 ranges) may log in to AMI
AMI_PERMIT="${CALLCYCLE_AMI_PERMIT:-172.16.0.0/255.240.0.0}"
secret=$(printf '%s' "$CALLCYCLE_AMI_SECRET" | sed -e 's/[\\&|]/\\&/g')
sed -i \
    -e "s|@CALLCYCLE_AMI_SECRET@|$secret|" \
    -e "s|^bindaddr = 127.0.0.1|bindaddr = 0.0.0.0|" \
    -e "s|^permit = 127.0.0.1/255.255.255.255|permit = 127.0.0.1/255.255.255.255\npermit = $AMI_PERMIT|" \
    /etc/asterisk/manager.conf
sed -i -e "s|^bind = 127.0.0.1:5060|bind = 0.0.0.0:5060|" /etc/asterisk/pjsip.conf
exec "$@"
