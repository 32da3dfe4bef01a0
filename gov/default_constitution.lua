-- The default constitution of a Coffer service (docs/governance.md, "Constitution").
--
-- validate(proposal) checks every action's arguments without reading state; resolve counts
-- the active members' votes; apply checks the proposal again (the constitution may have been
-- replaced since it was proposed), then runs each action's apply, which changes state only
-- through coffer.put / coffer.remove on public:coffer.gov.* maps and coffer.effect.
--
-- Iteration over state uses coffer.keys and coffer.sorted_keys, never pairs(): pairs()
-- visits keys in an order that differs between nodes.

local MEMBERS = "public:coffer.gov.members"
local USERS = "public:coffer.gov.users"
-- Users that governance removed: their certificates are refused as removed (403) rather than
-- unknown (401). Nothing else reads it; a user set again is taken from USERS first.
local REMOVED_USERS = "public:coffer.gov.removed_users"
local NODES = "public:coffer.gov.nodes"
local MEASUREMENTS = "public:coffer.gov.trusted_measurements"
local RECOVERY = "public:coffer.gov.recovery"
local RECOVERY_CURRENT = "current"

local MAX_ACTIONS = 64
local MAX_DESCRIPTION_BYTES = 4096
local MAX_QUOTED_CHARS = 64
local MAX_RECOVERY_THRESHOLD = 255
local MAX_SIGNATURE_TX_COUNT = 1000000
local MAX_SIGNATURE_INTERVAL_MS = 3600000
local MIN_MEASUREMENT_BYTES = 16
local MAX_MEASUREMENT_BYTES = 64

local function fail(message)
    error(message, 0)
end

local function quote(s)
    return tostring(s):sub(1, MAX_QUOTED_CHARS)
end

local function is_object(v)
    return type(v) == "table" and not coffer.is_array(v)
end

local function is_lower_hex(v, min_chars, max_chars)
    return type(v) == "string" and #v >= min_chars and #v <= max_chars and #v % 2 == 0 and
        v:match("^[0-9a-f]+$") ~= nil
end

-- Argument checkers: nil when the value is acceptable, else how the sentence
-- "argument <name> ..." ends.
local check = {}

function check.certificate(v)
    if type(v) ~= "string" or not coffer.is_pem_certificate(v) then
        return "must be a PEM certificate"
    end
    if not coffer.is_p384_certificate(v) then
        return "must be a certificate for an ECDSA P-384 key"
    end
end

function check.encryption_key(v)
    if type(v) ~= "string" or not coffer.is_x25519_public_key_pem(v) then
        return "must be an X25519 public key in PEM (SubjectPublicKeyInfo)"
    end
end

function check.optional_encryption_key(v)
    if v == coffer.null then
        return nil
    end
    local err = check.encryption_key(v)
    if err then
        return err .. " or null"
    end
end

function check.fingerprint(v)
    if not is_lower_hex(v, 64, 64) then
        return "must be a SHA-256 fingerprint (64 lower-case hex characters)"
    end
end

function check.node_id(v)
    if not is_lower_hex(v, 64, 64) then
        return "must be a node id (64 lower-case hex characters)"
    end
end

function check.measurement(v)
    if not is_lower_hex(v, 2 * MIN_MEASUREMENT_BYTES, 2 * MAX_MEASUREMENT_BYTES) then
        return "must be lower-case hex of " .. MIN_MEASUREMENT_BYTES .. " to " ..
            MAX_MEASUREMENT_BYTES .. " bytes"
    end
end

function check.constitution(v)
    if type(v) ~= "string" or #v == 0 then
        return "must be Lua source text"
    end
    local err = coffer.check_constitution(v)
    if err then
        return "is not a valid constitution: " .. err
    end
end

local function integer_from(lo, hi)
    return function(v)
        if math.type(v) ~= "integer" or v < lo or v > hi then
            return "must be an integer from " .. lo .. " to " .. hi
        end
    end
end

local function required(checker)
    return {checker = checker, required = true}
end

local function optional(checker)
    return {checker = checker, required = false}
end

-- Checks an action's arguments (an object; absent or null for none) against its spec:
-- name -> required(checker) | optional(checker). Unknown arguments are refused.
local function check_args(args, spec)
    if args == nil or args == coffer.null then
        args = {}
    end
    if not is_object(args) then
        return "arguments must be an object"
    end
    for _, name in ipairs(coffer.sorted_keys(args)) do
        if spec[name] == nil then
            return "unknown argument " .. quote(name)
        end
    end
    for _, name in ipairs(coffer.sorted_keys(spec)) do
        local rule, value = spec[name], args[name]
        if value == nil then
            if rule.required then
                return "argument " .. name .. " is missing"
            end
        else
            local err = rule.checker(value)
            if err then
                return "argument " .. name .. " " .. err
            end
        end
    end
    return nil
end

local function action(spec, apply_fn)
    return {
        validate = function(args)
            return check_args(args, spec)
        end,
        apply = apply_fn,
    }
end

-- State readers for the actions' apply.

local function active_members(except)
    local list = {}
    for _, fp in ipairs(coffer.keys(MEMBERS)) do
        local member = coffer.get(MEMBERS, fp)
        if fp ~= except and is_object(member) and member.status == "active" then
            list[#list + 1] = member
        end
    end
    return list
end

-- Members that can receive a recovery share: active ones with an encryption key.
local function share_holders(except)
    local count = 0
    for _, member in ipairs(active_members(except)) do
        if type(member.encryption_public_key) == "string" then
            count = count + 1
        end
    end
    return count
end

local function recovery_threshold()
    local recovery = coffer.get(RECOVERY, RECOVERY_CURRENT)
    if is_object(recovery) and math.type(recovery.threshold) == "integer" then
        return recovery.threshold
    end
    return nil
end

local function trusted_nodes()
    local voters = coffer.array()
    for _, id in ipairs(coffer.keys(NODES)) do
        local node = coffer.get(NODES, id)
        if is_object(node) and node.status == "trusted" then
            voters[#voters + 1] = id
        end
    end
    return voters
end

local function fingerprint(cert)
    local fp, err = coffer.fingerprint_of_pem(cert)
    if fp == nil then
        fail("certificate: " .. tostring(err))
    end
    return fp
end

actions = {}

actions.set_member = action({
    cert = required(check.certificate),
    encryption_public_key = required(check.encryption_key),
}, function(args)
    local fp = fingerprint(args.cert)
    if coffer.get(USERS, fp) ~= nil then
        fail("set_member: certificate " .. fp .. " is a user's; remove the user first")
    end
    coffer.put(MEMBERS, fp, {
        cert = args.cert,
        encryption_public_key = args.encryption_public_key,
        status = "active",
    })
    coffer.effect("reissue_recovery_shares", {})
end)

actions.remove_member = action({
    fingerprint = required(check.fingerprint),
}, function(args)
    local fp = args.fingerprint
    if coffer.get(MEMBERS, fp) == nil then
        fail("remove_member: no member " .. fp)
    end
    if #active_members(fp) == 0 then
        fail("remove_member: the service would have no active member left")
    end
    local threshold = recovery_threshold()
    local holders = share_holders(fp)
    if threshold ~= nil and holders < threshold then
        fail("remove_member: " .. holders .. " members could hold recovery shares, fewer " ..
            "than the recovery threshold " .. threshold .. "; lower the threshold first")
    end
    coffer.remove(MEMBERS, fp)
    coffer.effect("reissue_recovery_shares", {})
end)

actions.set_user = action({
    cert = required(check.certificate),
    encryption_public_key = optional(check.optional_encryption_key),
}, function(args)
    local fp = fingerprint(args.cert)
    if coffer.get(MEMBERS, fp) ~= nil then
        fail("set_user: certificate " .. fp .. " is a member's; remove the member first")
    end
    local key = args.encryption_public_key
    if key == nil then
        key = coffer.null
    end
    coffer.put(USERS, fp, {cert = args.cert, encryption_public_key = key})
end)

actions.remove_user = action({
    fingerprint = required(check.fingerprint),
}, function(args, proposal_id)
    local user = coffer.get(USERS, args.fingerprint)
    if user == nil then
        fail("remove_user: no user " .. args.fingerprint)
    end
    coffer.remove(USERS, args.fingerprint)
    coffer.put(REMOVED_USERS, args.fingerprint, {cert = user.cert, removed_by = proposal_id})
end)

actions.trust_node = action({
    node_id = required(check.node_id),
}, function(args)
    local node = coffer.get(NODES, args.node_id)
    if not is_object(node) then
        fail("trust_node: no node " .. args.node_id)
    end
    if node.status == "retired" then
        fail("trust_node: node " .. args.node_id .. " is retired; it must join again")
    end
    node.status = "trusted"
    coffer.put(NODES, args.node_id, node)
    coffer.effect("update_raft_configuration", {voters = trusted_nodes()})
end)

actions.remove_node = action({
    node_id = required(check.node_id),
}, function(args)
    local node = coffer.get(NODES, args.node_id)
    if not is_object(node) then
        fail("remove_node: no node " .. args.node_id)
    end
    node.status = "retired"
    coffer.put(NODES, args.node_id, node)
    local voters = trusted_nodes()
    if #voters == 0 then
        fail("remove_node: the service would have no trusted node left")
    end
    coffer.effect("update_raft_configuration", {voters = voters})
end)

actions.add_trusted_measurement = action({
    measurement = required(check.measurement),
}, function(args)
    coffer.put(MEASUREMENTS, args.measurement, {source = "governance"})
end)

actions.remove_trusted_measurement = action({
    measurement = required(check.measurement),
}, function(args)
    if coffer.get(MEASUREMENTS, args.measurement) == nil then
        fail("remove_trusted_measurement: " .. args.measurement .. " is not trusted")
    end
    coffer.remove(MEASUREMENTS, args.measurement)
end)

actions.set_recovery_threshold = action({
    threshold = required(integer_from(1, MAX_RECOVERY_THRESHOLD)),
}, function(args)
    local holders = share_holders(nil)
    if args.threshold > holders then
        fail("set_recovery_threshold: " .. args.threshold .. " exceeds the " .. holders ..
            " members that can hold a recovery share")
    end
    coffer.effect("set_recovery_threshold", {threshold = args.threshold})
end)

actions.transition_service_to_open = action({}, function()
    coffer.effect("open_service", {})
end)

actions.rekey_ledger = action({}, function()
    coffer.effect("rekey_ledger", {})
end)

actions.set_constitution = action({
    constitution = required(check.constitution),
}, function(args)
    coffer.effect("set_constitution", {constitution = args.constitution})
end)

actions.set_signature_interval = action({
    tx_count = required(integer_from(1, MAX_SIGNATURE_TX_COUNT)),
    interval_ms = required(integer_from(1, MAX_SIGNATURE_INTERVAL_MS)),
}, function(args)
    coffer.effect("set_signature_interval", {
        tx_count = args.tx_count,
        interval_ms = args.interval_ms,
    })
end)

-- Entry points.

function validate(proposal)
    for _, key in ipairs(coffer.sorted_keys(proposal)) do
        if key ~= "actions" and key ~= "description" then
            return "proposal: unknown member " .. quote(key)
        end
    end
    local description = proposal.description
    if description ~= nil and (type(description) ~= "string" or
        #description > MAX_DESCRIPTION_BYTES) then
        return "proposal: description must be a string of at most " .. MAX_DESCRIPTION_BYTES ..
            " bytes"
    end

    local list = proposal.actions
    if type(list) ~= "table" or not coffer.is_array(list) then
        return "proposal: actions must be an array"
    end
    if #list == 0 or #list > MAX_ACTIONS then
        return "proposal: actions must hold 1 to " .. MAX_ACTIONS .. " actions"
    end
    for i, act in ipairs(list) do
        if not is_object(act) then
            return "proposal: action " .. i .. " must be an object"
        end
        for _, key in ipairs(coffer.sorted_keys(act)) do
            if key ~= "name" and key ~= "args" then
                return "proposal: action " .. i .. " has an unknown member " .. quote(key)
            end
        end
        if type(act.name) ~= "string" then
            return "proposal: action " .. i .. " must have a name"
        end
        local definition = actions[act.name]
        if definition == nil then
            return "unknown action " .. quote(act.name)
        end
        local err = definition.validate(act.args)
        if err then
            return "action " .. act.name .. ": " .. err
        end
    end
    return nil
end

-- Accepted once a strict majority of the active members voted yes; rejected once that can no
-- longer happen (at least half of them voted no). Votes of anyone else do not count.
function resolve(proposal, votes, members)
    local active, yes, no = 0, 0, 0
    for _, fp in ipairs(coffer.sorted_keys(members)) do
        local member = members[fp]
        if is_object(member) and member.status == "active" then
            active = active + 1
            if votes[fp] == true then
                yes = yes + 1
            elseif votes[fp] == false then
                no = no + 1
            end
        end
    end
    if 2 * yes > active then
        return "accepted"
    end
    if 2 * no >= active then
        return "rejected"
    end
    return "open"
end

function apply(proposal, proposal_id)
    local err = validate(proposal)
    if err then
        fail("apply: proposal " .. tostring(proposal_id) .. " is no longer valid: " .. err)
    end
    for _, act in ipairs(proposal.actions) do
        local args = act.args
        if args == nil or args == coffer.null then
            args = {}
        end
        actions[act.name].apply(args, proposal_id)
    end
end
