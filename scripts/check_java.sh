#!/usr/bin/env bash
# Spark 4 needs Java 17 or 21 on PATH (or JAVA_HOME).
set -euo pipefail
java_bin=java
[ -n "${JAVA_HOME:-}" ] && java_bin="$JAVA_HOME/bin/java"
if ! command -v "$java_bin" > /dev/null 2>&1; then
  echo "recpipe: Java 17 is required by Spark but no 'java' was found on PATH or in JAVA_HOME." >&2
  echo "         Install it (Debian/Ubuntu: apt-get install openjdk-17-jre-headless) and run make again." >&2
  exit 1
fi
version=$("$java_bin" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1)
if [ "$version" != "17" ] && [ "$version" != "21" ]; then
  echo "recpipe: Spark needs Java 17 (or 21); found Java '${version:-unknown}' at $(command -v "$java_bin")." >&2
  echo "         Install Java 17 (apt-get install openjdk-17-jre-headless) or point JAVA_HOME at one." >&2
  exit 1
fi
