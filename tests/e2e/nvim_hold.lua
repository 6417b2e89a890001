-- Headless Neovim (0.7+) that stays open on a workspace while a test works beside it.
-- Driven by tests/e2e/test_daemon_peer.py through environment variables: it starts
-- `forge-indexer lsp` on $FORGE_TEST_WS, waits for the index, writes $FORGE_TEST_READY,
-- waits for $FORGE_TEST_RELEASE to exist, searches once more, and writes what it saw
-- (the messages shown to the user, the search) as JSON to $FORGE_TEST_OUT.
local env = vim.env
local out = { messages = {} }

local function finish(code)
  local f = assert(io.open(env.FORGE_TEST_OUT, "w"))
  f:write(vim.fn.json_encode(out))
  f:close()
  vim.cmd(code == 0 and "qall!" or "cquit!")
end

local function exists(path)
  return vim.loop.fs_stat(path) ~= nil
end

local function run()
  local ws = env.FORGE_TEST_WS
  local id = vim.lsp.start_client({
    name = "forge-indexer",
    cmd = { env.FORGE_TEST_PYTHON, "-m", "server.cli", "lsp" },
    cmd_cwd = env.FORGE_TEST_REPO,
    root_dir = ws,
    workspace_folders = { { uri = vim.uri_from_fname(ws), name = "ws" } },
    handlers = {
      ["window/showMessage"] = function(_, result)
        table.insert(out.messages, result.message)
      end,
    },
  })
  assert(id, "start_client failed")
  local client = vim.lsp.get_client_by_id(id)
  assert(vim.wait(60000, function() return client.initialized end, 50), "initialize timed out")

  local deadline = vim.loop.now() + 600000
  while true do
    local r = client.request_sync("forge/status", vim.empty_dict(), 10000)
    if r and r.result and #r.result.roots == 1 then
      local root = r.result.roots[1]
      assert(root.state ~= "error", "the root is in error: " .. tostring(root.lastError))
      if root.state == "idle" and root.coverage == 1 then
        break
      end
    end
    assert(vim.loop.now() < deadline, "indexing did not finish")
    vim.wait(200)
  end
  local f = assert(io.open(env.FORGE_TEST_READY, "w"))
  f:close()
  assert(vim.wait(600000, function() return exists(env.FORGE_TEST_RELEASE) end, 100), "never released")
  local hits = client.request_sync("forge/search", { query = "load configuration from a file", limit = 5 }, 30000)
  out.search = hits and (hits.result or { error = hits.err })
  client.stop()
  vim.wait(10000, function() return client.is_stopped() end, 50)
end

local ok, err = pcall(run)
if not ok then
  out.error = tostring(err)
  finish(1)
else
  finish(0)
end
