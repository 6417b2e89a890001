-- Headless Neovim (0.7 to 0.11) loads the set-up module of docs/neovim.md as written and
-- opens files: where a server starts, with which root, and what the user is told.
-- Driven by tests/e2e/test_neovim.py through environment variables; writes what it saw
-- as JSON to $FORGE_TEST_OUT (exit code 0 when the script ran to the end).
local env = vim.env
local new_api = vim.fn.has("nvim-0.11") == 1 -- client methods take self from 0.11 on
local out = { notices = {}, deprecated = {}, opened = {} }

local function finish(code)
  local f = assert(io.open(env.FORGE_TEST_OUT, "w"))
  f:write(vim.fn.json_encode(out))
  f:close()
  vim.cmd(code == 0 and "qall!" or "cquit!")
end

local function method(client, name, ...)
  if new_api then
    return client[name](client, ...)
  end
  return client[name](...)
end

local function clients()
  return (vim.lsp.get_clients or vim.lsp.get_active_clients)()
end

local function describe()
  local seen = {}
  for _, c in ipairs(clients()) do
    table.insert(seen, { name = c.name, root_dir = c.config.root_dir, initialized = c.initialized == true })
  end
  return seen
end

local buffers = {} -- { file, bufnr } in the order opened

local function open(file)
  vim.cmd("edit " .. vim.fn.fnameescape(file))
  table.insert(buffers, { file = file, bufnr = vim.api.nvim_get_current_buf() })
end

-- Which clients each opened buffer is attached to (asked once the server has initialized:
-- Neovim 0.7 lists a client only from then on).
local function attachments()
  for _, b in ipairs(buffers) do
    local attached = {}
    for _, c in ipairs(clients()) do
      if vim.lsp.buf_is_attached(b.bufnr, c.id) then
        table.insert(attached, c.config.root_dir)
      end
    end
    table.insert(out.opened, { file = b.file, attached = attached })
  end
end

local function run()
  -- Every vim.deprecate() call the set-up makes (Neovim reports its own deprecated
  -- functions through it), and every message it shows.
  local deprecate = vim.deprecate
  vim.deprecate = function(name, ...)
    table.insert(out.deprecated, tostring(name))
    if deprecate then
      return deprecate(name, ...)
    end
  end
  vim.notify = function(msg, level)
    table.insert(out.notices, { msg = msg, level = level })
  end

  local forge = dofile(env.FORGE_TEST_SETUP_LUA)
  forge.setup()

  open(env.FORGE_TEST_LOOSE) -- under a folder without markers, below a HOME holding .git
  open(env.FORGE_TEST_AT_HOME) -- directly in that HOME
  open(env.FORGE_TEST_PROJECT_FILE) -- in a project with a marker
  assert(vim.wait(60000, function()
    local c = clients()[1]
    return c ~= nil and c.initialized == true
  end, 50), "the server did not initialize: " .. vim.inspect(describe()))
  open(env.FORGE_TEST_PROJECT_FILE2) -- the same project: the same client
  vim.wait(500)
  attachments()
  out.clients = describe()

  local client = clients()[1]
  local r = method(client, "request_sync", "forge/status", vim.empty_dict(), 20000, 0)
  assert(r and r.result, "forge/status failed: " .. vim.inspect(r))
  out.status_roots = {}
  for _, root in ipairs(r.result.roots) do
    table.insert(out.status_roots, root.root)
  end

  -- The documented user commands reach the server through their own request() helper.
  dofile(env.FORGE_TEST_DOC_LUA)
  vim.cmd("ForgeReindex!")
  out.reindex_told = vim.wait(20000, function()
    for _, n in ipairs(out.notices) do
      if n.msg == "forge-indexer: reindex scheduled" then return true end
    end
    return false
  end, 50)

  for _, c in ipairs(clients()) do
    method(c, "stop")
  end
  vim.wait(10000, function() return #clients() == 0 end, 50)
end

local ok, err = pcall(run)
if not ok then
  out.error = tostring(err)
  finish(1)
else
  finish(0)
end
