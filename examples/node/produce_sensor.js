// Produce one valid fedtwin v1 sensor message (a 1 s chunk at 1 kHz) from Node.js.
// Usage: npm install && node produce_sensor.js [bootstrap] [topic] [asset]
const { Kafka, logLevel } = require('kafkajs');

const [bootstrap = '127.0.0.1:19092', topic = 'fedtwin.sensors', asset = 'pump-js'] = process.argv.slice(2);
const kafka = new Kafka({ clientId: 'fedtwin-node', brokers: [bootstrap], logLevel: logLevel.ERROR });

(async () => {
  const producer = kafka.producer();
  await producer.connect();
  const n = 1000;
  const constant = (v) => Array.from({ length: n }, () => v);
  const message = {
    v: 1, asset, seq: 0, t0: Date.now() / 1000, fs: 1000.0,
    pressure: constant(7.2), flow: constant(38.5), speed: constant(1916.0), current: constant(6.5),
  };
  await producer.send({ topic, messages: [{ key: asset, value: JSON.stringify(message) }] });
  await producer.disconnect();
  console.log(`produced ${asset} seq 0 (${n} samples per signal) to ${topic} at ${bootstrap}`);
})().catch((err) => { console.error(err); process.exit(1); });
