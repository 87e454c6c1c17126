#!/bin/sh
set -eu
BIND="${BIND_ADDR:-127.0.0.1}"
CLIENT="http://${BIND}:${ETCD_CLIENT_PORT:-2379}"
PEER="http://${BIND}:${ETCD_PEER_PORT:-2380}"
exec etcd --name etcd --data-dir /etcd-data \
  --listen-client-urls "$CLIENT" --advertise-client-urls "$CLIENT" \
  --listen-peer-urls "$PEER" --initial-advertise-peer-urls "$PEER" \
  --initial-cluster "etcd=$PEER" --initial-cluster-state new \
  --initial-cluster-token postgresql-cluster
