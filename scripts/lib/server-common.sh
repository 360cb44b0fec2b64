# Helpers shared by the test-server scripts (scripts/*-server.sh), which source this file
# after setting $state, their state folder. Not a script of its own.

# Prints an error naming the calling script and exits 1.
die() { echo "$(basename "$0"): $*" >&2; exit 1; }

# Prints the PID recorded in $state/pid if that process is alive; fails otherwise.
running_pid() {
  [ -f "$state/pid" ] || return 1
  local pid; pid=$(cat "$state/pid")
  kill -0 "$pid" 2>/dev/null && echo "$pid"
}

# Succeeds when something accepts connections on 127.0.0.1:PORT.
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Makes the Python venv $venv (under .cache/) and installs the pinned SPEC into it, unless
# MODULE already imports there.
install_venv() {
  local module=$1 spec=$2
  if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import $module" 2>/dev/null; then
    python3 -m venv "$venv" >&2 || die "python3 -m venv failed (on Debian: apt-get install python3-venv)"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "$spec" >&2
  fi
}
