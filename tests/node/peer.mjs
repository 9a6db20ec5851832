#!/usr/bin/env node
// A second, independent OCPP peer for edge-bridge's integration tests: npm's ocpp-rpc in STRICT mode, which
// validates every answer of our server against the official OCPP JSON schemas (and every call we make).
//
//   node peer.mjs <ws-url> <identity> <1.6|2.0.1> [password]
//
// <ws-url> is the endpoint without the identity (ws://127.0.0.1:9000/ocpp); ocpp-rpc appends /<identity>.
// Runs one scripted conversation (a whole charging session) and prints ONE JSON line per call to stdout:
//   {"method": ..., "ok": true|false, "response": {...}|null, "error": "...", "params": {...}}
// ("params" is what was sent, so a test can derive the expected energy; on a failure "frame" is the raw answer
// when one came). Exit 0 when every call got a schema-valid, expected answer; 1 otherwise; 2 on bad usage.

import rpc from 'ocpp-rpc';

const { RPCClient } = rpc;

const PROTOCOLS = { '1.6': 'ocpp1.6', '2.0.1': 'ocpp2.0.1' };
const CALL_TIMEOUT_MS = 10000;

const [endpoint, identity, version, password] = process.argv.slice(2);
if (!endpoint || !identity || !(version in PROTOCOLS)) {
    process.stderr.write('usage: node peer.mjs <ws-url> <identity> <1.6|2.0.1> [password]\n');
    process.exit(2);
}
const protocol = PROTOCOLS[version];

// Charger time: a timeline that starts ten minutes ago and only moves forward, so every timestamp is in the past,
// in sending order, and a session spans plausible minutes while the conversation itself takes well under a second.
const origin = Date.now() - 10 * 60 * 1000;
const at = (seconds) => new Date(origin + seconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');

const client = new RPCClient({
    endpoint: endpoint.replace(/\/+$/, ''),
    identity,
    password: password || undefined,
    protocols: [protocol],
    strictMode: true,
    reconnect: false,
    callTimeoutMs: CALL_TIMEOUT_MS,
});

// Calls go one at a time (each is awaited), so what these listeners saw belongs to the call in flight.
let lastAnswer = null; // the raw CALLRESULT / CALLERROR frame, quoted when the answer is refused
let lastFailure = null; // ocpp-rpc's strictValidationFailure: which side broke the schema
client.on('message', ({ message, outbound }) => {
    if (!outbound) lastAnswer = message.toString();
});
client.on('strictValidationFailure', ({ outbound, isCall }) => {
    lastFailure = outbound && isCall ? 'our request (a peer script bug)' : 'the server answer';
});

let allOk = true;

function emit(line) {
    if (!line.ok) allOk = false;
    process.stdout.write(JSON.stringify(line) + '\n');
}

function describe(error) {
    const code = error?.rpcErrorCode ? `${error.rpcErrorCode}: ` : '';
    return `${code}${error?.message ?? String(error)}`;
}

// One call. `expect(response)` returns a complaint (string) when the schema-valid answer is still not the one the
// script needs (e.g. a rejected boot), or nothing.
async function call(method, params, expect = () => undefined) {
    lastAnswer = lastFailure = null;
    try {
        const response = await client.call(method, params);
        const complaint = expect(response);
        if (complaint) {
            emit({ method, ok: false, response, error: `unexpected answer: ${complaint}`, params, frame: lastAnswer });
        } else {
            emit({ method, ok: true, response, error: '', params });
        }
        return response;
    } catch (error) {
        const line = { method, ok: false, response: null, error: describe(error), params };
        if (lastFailure) line.error = `schema violation in ${lastFailure}: ${line.error}`;
        if (error?.details?.errors) line.validation = error.details.errors;
        if (lastAnswer) line.frame = lastAnswer;
        emit(line);
        return null;
    }
}

const accepted = (path) => (response) => {
    const status = path(response);
    return status === 'Accepted' ? undefined : `status ${JSON.stringify(status)}, not "Accepted"`;
};

// ------------------------------------------------------------------------------------------------ OCPP 1.6J

async function conversation16() {
    const idTag = 'PEER16TAG01';
    const meterStart = 1234567; // a lifetime register, in Wh
    const meterStop = 1240567; // +6 kWh in 4.5 minutes: 80 kW on a 120 kW DC charger
    const energy = (value, timestamp, context) => ({
        timestamp,
        sampledValue: [
            { value: String(value), context, measurand: 'Energy.Active.Import.Register', unit: 'Wh', location: 'Outlet' },
        ],
    });

    await call(
        'BootNotification',
        {
            chargePointVendor: 'ocpp-rpc-peer',
            chargePointModel: 'PEER-DC',
            chargePointSerialNumber: 'PEER-0001',
            firmwareVersion: '1.0.0',
        },
        accepted((r) => r.status),
    );
    await call('Heartbeat', {});
    await call('StatusNotification', { connectorId: 0, errorCode: 'NoError', status: 'Available', timestamp: at(0) });
    await call('StatusNotification', { connectorId: 1, errorCode: 'NoError', status: 'Preparing', timestamp: at(10) });
    await call('Authorize', { idTag }, accepted((r) => r.idTagInfo?.status));
    const started = await call(
        'StartTransaction',
        { connectorId: 1, idTag, meterStart, timestamp: at(30) },
        (r) => (Number.isInteger(r.transactionId) && r.transactionId > 0 ? accepted((x) => x.idTagInfo?.status)(r)
            : `transactionId ${r.transactionId} is no usable id`),
    );
    const transactionId = started?.transactionId ?? 0;
    await call('MeterValues', {
        connectorId: 1,
        transactionId,
        meterValue: [
            {
                timestamp: at(150),
                sampledValue: [
                    { value: '1237567', context: 'Sample.Periodic', measurand: 'Energy.Active.Import.Register', unit: 'Wh' },
                    { value: '80000', context: 'Sample.Periodic', measurand: 'Power.Active.Import', unit: 'W' },
                ],
            },
        ],
    });
    await call('StatusNotification', { connectorId: 1, errorCode: 'NoError', status: 'Charging', timestamp: at(160) });
    await call(
        'StopTransaction',
        {
            transactionId,
            idTag,
            meterStop,
            timestamp: at(300),
            reason: 'Local',
            transactionData: [energy(meterStart, at(30), 'Transaction.Begin'), energy(meterStop, at(300), 'Transaction.End')],
        },
        (r) => (r.idTagInfo === undefined ? undefined : accepted((x) => x.idTagInfo.status)(r)),
    );
    await call('StatusNotification', { connectorId: 1, errorCode: 'NoError', status: 'Finishing', timestamp: at(301) });
    await call('StatusNotification', { connectorId: 1, errorCode: 'NoError', status: 'Available', timestamp: at(320) });
    await call('DataTransfer', { vendorId: 'com.example.peer', messageId: 'Ping', data: 'hello' });
    await call('DiagnosticsStatusNotification', { status: 'Idle' });
    await call('FirmwareStatusNotification', { status: 'Installed' });
}

// ------------------------------------------------------------------------------------------------ OCPP 2.0.1

async function conversation201() {
    const idToken = { idToken: 'PEER201TOKEN', type: 'ISO14443' };
    const evse = { id: 1, connectorId: 1 };
    const transactionId = `peer-${process.pid}-${Date.now()}`;
    const register = (wh, timestamp, context) => ({
        timestamp,
        sampledValue: [
            { value: wh, context, measurand: 'Energy.Active.Import.Register', unitOfMeasure: { unit: 'Wh' } },
            { value: context === 'Sample.Periodic' ? 7000 : 0, context, measurand: 'Power.Active.Import', unitOfMeasure: { unit: 'W' } },
        ],
    });
    const event = (eventType, seqNo, seconds, triggerReason, transactionInfo, extra = {}) =>
        call(
            'TransactionEvent',
            { eventType, timestamp: at(seconds), triggerReason, seqNo, transactionInfo: { transactionId, ...transactionInfo }, evse, ...extra },
            (r) => (extra.idToken && r.idTokenInfo ? accepted((x) => x.idTokenInfo.status)(r) : undefined),
        );

    await call(
        'BootNotification',
        {
            reason: 'PowerUp',
            chargingStation: { model: 'PEER-AC', vendorName: 'ocpp-rpc-peer', serialNumber: 'PEER-0002', firmwareVersion: '2.0.0' },
        },
        accepted((r) => r.status),
    );
    await call('Heartbeat', {});
    await call('StatusNotification', { timestamp: at(0), connectorStatus: 'Available', evseId: 1, connectorId: 1 });
    await call('StatusNotification', { timestamp: at(10), connectorStatus: 'Occupied', evseId: 1, connectorId: 1 });
    await call('Authorize', { idToken }, accepted((r) => r.idTokenInfo?.status));
    // 500000 Wh lifetime register; +350 Wh over three minutes: 7 kW
    await event('Started', 0, 20, 'Authorized', { chargingState: 'EVConnected' }, {
        idToken,
        meterValue: [register(500000, at(20), 'Transaction.Begin')],
    });
    await event('Updated', 1, 80, 'MeterValuePeriodic', { chargingState: 'Charging' }, {
        meterValue: [register(500115, at(80), 'Sample.Periodic')],
    });
    await event('Updated', 2, 140, 'MeterValuePeriodic', { chargingState: 'Charging' }, {
        meterValue: [register(500232, at(140), 'Sample.Periodic')],
    });
    await event('Ended', 3, 200, 'StopAuthorized', { chargingState: 'Idle', stoppedReason: 'Local' }, {
        meterValue: [register(500350, at(200), 'Transaction.End')],
    });
    await call('NotifyEvent', {
        generatedAt: at(201),
        seqNo: 0,
        tbc: false,
        eventData: [
            {
                eventId: 1,
                timestamp: at(201),
                trigger: 'Delta',
                actualValue: 'Available',
                eventNotificationType: 'HardWiredNotification',
                component: { name: 'Connector', evse },
                variable: { name: 'AvailabilityState' },
            },
        ],
    });
    await call('SecurityEventNotification', { type: 'SettingSystemTime', timestamp: at(202), techInfo: 'peer test' });
    await call('FirmwareStatusNotification', { status: 'Installed', requestId: 1 });
    await call('LogStatusNotification', { status: 'Uploaded', requestId: 2 });
    await call('DataTransfer', { vendorId: 'com.example.peer', messageId: 'Ping', data: { hello: 'world' } });
    await call('NotifyReport', {
        requestId: 3,
        generatedAt: at(203),
        seqNo: 0,
        tbc: false,
        reportData: [
            {
                component: { name: 'OCPPCommCtrlr' },
                variable: { name: 'HeartbeatInterval' },
                variableAttribute: [{ type: 'Actual', value: '300', mutability: 'ReadWrite' }],
                variableCharacteristics: { dataType: 'integer', supportsMonitoring: false, unit: 's' },
            },
        ],
    });
    // after the session: a reading outside any transaction (it must not change the session's energy)
    await call('MeterValues', { evseId: 1, meterValue: [register(500350, at(260), 'Sample.Clock')] });
}

// ------------------------------------------------------------------------------------------------ main

async function main() {
    try {
        await client.connect();
    } catch (error) {
        emit({ method: 'connect', ok: false, response: null, error: describe(error), params: { endpoint, identity } });
        return;
    }
    if (client.protocol !== protocol) {
        // without the agreed subprotocol ocpp-rpc validates nothing: that must not pass as a success
        emit({
            method: 'connect',
            ok: false,
            response: null,
            error: `the server agreed on subprotocol ${JSON.stringify(client.protocol ?? null)}, not ${protocol}`,
            params: { endpoint, identity },
        });
    } else {
        await (version === '1.6' ? conversation16() : conversation201());
    }
    await client.close({ code: 1000, reason: 'peer done' });
}

main()
    .catch((error) => emit({ method: 'peer', ok: false, response: null, error: describe(error), params: null }))
    .finally(() => process.exit(allOk ? 0 : 1));
