# Source this file (`. scripts/env.sh`) to use plain `cargo` commands after `scripts/setup.sh`:
# it points tch's build at the virtualenv's libtorch (LIBTORCH_USE_PYTORCH=1), unless LIBTORCH is
# already set to a libtorch of your own.
_ganaug_root="$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")/.." && pwd)"
if [ -z "${LIBTORCH:-}" ]; then
  export VIRTUAL_ENV="$_ganaug_root/.venv"
  case ":$PATH:" in
    *":$VIRTUAL_ENV/bin:"*) ;;
    *) export PATH="$VIRTUAL_ENV/bin:$PATH" ;;
  esac
  export LIBTORCH_USE_PYTORCH=1
fi
unset _ganaug_root
