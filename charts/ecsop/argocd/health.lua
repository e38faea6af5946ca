-- Argo CD health check for ecsop.io/ApiDeployment (Lua 5.1, as Argo CD's gopher-lua runs it).
--
--   Suspended    spec.suspend is true (ecsop observes and writes nothing)
--   Progressing  no status yet, or status.observedGeneration < metadata.generation, or Reconciling=True,
--                or Ready is not (yet) True for this generation; a blueGreen, canary or linear rollout
--                leads its message with its phase and split ("canary canary 10% (new 10% / old 90%): ...")
--   Degraded     Stalled=True (RolledBack, AnalysisFailed, Aborted, ProgressDeadlineExceeded, InvalidSpec,
--                AccessDenied, RejectedByAws, ImageNotFound, ...): the message is the condition's
--   Healthy      Ready=True for the current generation (ECS finished rolling out exactly the
--                revision ecsop registered for it)
--
-- Tests: charts/ecsop/argocd/testdata/*.yaml, run by operator/tests/chart.rs.

local hs = {}

local function condition(status, type_)
  if status == nil or status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == type_ then
      return c
    end
  end
  return nil
end

-- A condition describes the current generation unless it names an older one.
local function current(c, generation)
  return c ~= nil and (c.observedGeneration == nil or generation == nil or c.observedGeneration == generation)
end

local function text(c, fallback)
  if c == nil then
    return fallback
  end
  local reason = c.reason or ""
  local message = c.message or ""
  if reason ~= "" and message ~= "" then
    return reason .. ": " .. message
  elseif message ~= "" then
    return message
  elseif reason ~= "" then
    return reason
  end
  return fallback
end

-- Where a blueGreen, canary or linear rollout is (status.rollout.phase), with the traffic split.
local function rollout_phase(status)
  local r = status.rollout
  if r == nil or r.phase == nil or r.phase == "" then
    return nil
  end
  local s = (r.strategy or "rollout") .. " " .. r.phase
  if r.traffic ~= nil and r.traffic.newPercent ~= nil and r.traffic.oldPercent ~= nil then
    s = s .. string.format(" (new %d%% / old %d%%)", r.traffic.newPercent, r.traffic.oldPercent)
  end
  return s
end

local generation = nil
if obj.metadata ~= nil then
  generation = obj.metadata.generation
end
local status = obj.status

if obj.spec ~= nil and obj.spec.suspend == true then
  hs.status = "Suspended"
  local ready = condition(status, "Ready")
  if ready ~= nil and ready.message ~= nil and ready.message ~= "" then
    hs.message = ready.message
  else
    hs.message = "suspended: ecsop observes and writes nothing"
  end
  return hs
end

if status == nil or status.observedGeneration == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for ecsop to reconcile"
  return hs
end

if generation ~= nil and status.observedGeneration < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for ecsop to observe generation " .. string.format("%d", generation)
  return hs
end

local stalled = condition(status, "Stalled")
if stalled ~= nil and stalled.status == "True" and current(stalled, generation) then
  hs.status = "Degraded"
  hs.message = text(stalled, "Stalled")
  return hs
end

local reconciling = condition(status, "Reconciling")
if reconciling ~= nil and reconciling.status == "True" then
  hs.status = "Progressing"
  hs.message = text(reconciling, "Reconciling")
  local phase = rollout_phase(status)
  if phase ~= nil then
    hs.message = phase .. ": " .. hs.message
  end
  return hs
end

local ready = condition(status, "Ready")
if ready ~= nil and ready.status == "True" and current(ready, generation) then
  hs.status = "Healthy"
  hs.message = text(ready, "Ready")
  return hs
end

hs.status = "Progressing"
hs.message = text(ready, "Waiting for the rollout to finish")
return hs
