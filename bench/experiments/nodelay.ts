/**
 * The local stack built with bench/experiments/amqp-nodelay.ts in place of `amqplib`
 * (bench/run.mjs); benchmark 5 runs it in turns with the real one.
 */
export { startShop } from '../../knative/local/runner.ts'
