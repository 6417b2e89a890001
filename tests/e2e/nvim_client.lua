-- Headless Neovim (0.7+) as a real LSP client of forge-indexer.
-- Driven by tests/e2e/test_neovim.py through environment variables; writes what it saw
-- as JSON to $FORGE_TEST_OUT and quits (exit code 0 when the script ran to the end).
local env = vim.env
local out = { progress_ends = 0 }

local function finish(code)
  local f = assert(io.open(env.FORGE_TEST_OUT, "w"))
  f:write(vim.fn.json_encode(out))
  f:close()
  vim.cmd(code == 0 and "qall!" or "cquit!")
end

local function run()
  local root_a, root_b = env.FORGE_TEST_ROOT_A, env.FORGE_TEST_ROOT_B
  local id = vim.lsp.start_client({
    name = "forge-indexer",
    cmd = { env.FORGE_TEST_PYTHON, "-m", env.FORGE_TEST_SERVER_MODULE or "server" },
    cmd_cwd = env.FORGE_TEST_REPO,
    cmd_env = { PYTHONPATH = env.FORGE_TEST_REPO },
    root_dir = root_a,
    workspace_folders = {
      { uri = vim.uri_from_fname(root_a), name = "root_a" },
      { uri = vim.uri_from_fname(root_b), name = "root_b" },
    },
    handlers = {
      ["$/progress"] = function(_, result)
        if result and result.value and result.value.kind == "end" then
          out.progress_ends = out.progress_ends + 1
        end
      end,
    },
  })
  assert(id, "start_client failed")
  local client = vim.lsp.get_client_by_id(id)
  assert(vim.wait(60000, function() return client.initialized end, 50), "initialize timed out")

  -- Wait for the background indexing of both roots.
  local deadline = vim.loop.now() + 600000
  while true do
    local r = client.request_sync("forge/status", vim.empty_dict(), 10000)
    if r and r.result then
      local ready = #r.result.roots == 2
      for _, root in ipairs(r.result.roots) do
        assert(root.state ~= "error", "root " .. root.name .. " is in error: " .. tostring(root.lastError))
        ready = ready and root.state == "idle" and root.coverage == 1
      end
      if ready then
        out.status = r.result
        break
      end
    end
    assert(vim.loop.now() < deadline, "indexing did not finish")
    vim.wait(200)
  end

  local sym = client.request_sync("workspace/symbol", { query = "parse_config_file" }, 20000)
  out.symbols = sym and (sym.result or { error = sym.err })
  local hits = client.request_sync("forge/search", { query = "great-circle distance between two points on earth", limit = 5 }, 30000)
  out.search = hits and (hits.result or { error = hits.err })
  local bad = client.request_sync("forge/search", { limit = 5 }, 10000)
  out.bad = bad and bad.err

  -- The user commands from docs/neovim.md, extracted by the test: :ForgeSearch fills
  -- the quickfix list.
  if env.FORGE_TEST_DOC_LUA then
    dofile(env.FORGE_TEST_DOC_LUA)
    vim.cmd("ForgeSearch great-circle distance between two points on earth")
    vim.wait(30000, function() return #vim.fn.getqflist() > 0 end, 50)
    local qf = vim.fn.getqflist({ title = 1, items = 1 })
    out.quickfix = { title = qf.title, first = qf.items[1] and {
      filename = vim.api.nvim_buf_get_name(qf.items[1].bufnr), lnum = qf.items[1].lnum, text = qf.items[1].text,
    } }
  end

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
