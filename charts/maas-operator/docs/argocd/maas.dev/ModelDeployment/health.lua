-- Argo CD health check for maas.dev/ModelDeployment, from the conditions the maas operator writes.
-- Runs without Argo CD's open libraries (no string library), as a resource.customizations entry does.
--   Progressing  the operator has not observed the current generation, or Ready is not True yet
--                (rolling out, waiting for GPUs, loading the model)
--   Degraded     Stalled=True: crash looping, the model cannot be fetched or loaded, a child that is
--                someone else's, a refused child, or a rollout past its progress deadline
--   Suspended    Ready, but the autoscaler holds the replicas (ScalingActive=False: Prometheus
--                unreachable, a query failing, no Prometheus configured): serving, not scaling
--   Healthy      Ready: the current spec is rolled out and serving (minReplicas of it when
--                autoscaled; replicas still waiting for GPUs are named in the message)
--   Missing      never returned here: Argo CD says Missing itself when the object is not in the cluster
local hs = {}

local function condition(type)
  if obj.status == nil or obj.status.conditions == nil then
    return nil
  end
  for _, c in ipairs(obj.status.conditions) do
    if c.type == type then
      return c
    end
  end
  return nil
end

local generation = obj.metadata.generation or 0
local observed = 0
if obj.status ~= nil and obj.status.observedGeneration ~= nil then
  observed = obj.status.observedGeneration
end
if observed == 0 then
  hs.status = "Progressing"
  hs.message = "Waiting for the maas operator to see this ModelDeployment"
  return hs
end
if observed < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the maas operator to observe generation " .. generation ..
    " (status describes generation " .. observed .. ")"
  return hs
end

local stalled = condition("Stalled")
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = stalled.message
  return hs
end

local ready = condition("Ready")
if ready == nil or ready.status ~= "True" then
  hs.status = "Progressing"
  hs.message = "Waiting for the ModelDeployment to become Ready"
  if ready ~= nil then
    hs.message = ready.message
  end
  return hs
end

local scalingActive = condition("ScalingActive")
if scalingActive ~= nil and scalingActive.status == "False" then
  hs.status = "Suspended"
  hs.message = ready.message .. "; autoscaling suspended: " .. scalingActive.message
  return hs
end

hs.status = "Healthy"
hs.message = ready.message
local scalingLimited = condition("ScalingLimited")
if scalingLimited ~= nil and scalingLimited.status == "True" then
  hs.message = hs.message .. "; " .. scalingLimited.message
end
return hs
