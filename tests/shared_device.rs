//! An engine that shares wgsample's device needs the device to have the
//! features its own kernels use (burn's wgpu backend fails on a device
//! with none). `open_device_with` asks for them; checked here with plain
//! wgpu: a timestamp query set, which needs `Features::TIMESTAMP_QUERY`,
//! is a validation error on `open_device`'s featureless device and works
//! on one opened with the feature, and the sampler runs on that device.

use wgsample::gpu::{
    DeviceFeatures, GpuContext, GpuSampler, SamplerConfig, open_device, open_device_with,
};
use wgsample::{Error, Logits, SamplingParams};

/// Creates a 2-entry timestamp query set inside a validation scope and
/// returns wgpu's error, if any.
fn timestamp_query_error(ctx: &GpuContext) -> Option<wgpu::Error> {
    let scope = ctx.device.push_error_scope(wgpu::ErrorFilter::Validation);
    let _q = ctx.device.create_query_set(&wgpu::QuerySetDescriptor {
        label: Some("engine timestamps"),
        ty: wgpu::QueryType::Timestamp,
        count: 2,
    });
    pollster::block_on(scope.pop())
}

#[test]
fn an_engine_gets_the_features_it_asks_for() {
    let plain = open_device().unwrap_or_else(|e| panic!("{e}"));
    assert!(plain.device.features().is_empty());
    assert!(
        timestamp_query_error(&plain).is_some(),
        "a featureless device must refuse timestamp queries"
    );

    let f = wgpu::Features::TIMESTAMP_QUERY;
    let ctx = open_device_with(DeviceFeatures::Exactly(f))
        .unwrap_or_else(|e| panic!("the test adapter (lavapipe) offers TIMESTAMP_QUERY: {e}"));
    assert!(ctx.device.features().contains(f));
    assert!(timestamp_query_error(&ctx).is_none());

    // Every feature the adapter has, which includes that one.
    let all = open_device_with(DeviceFeatures::AdapterAll).unwrap();
    assert!(all.device.features().contains(f));

    // wgsample still samples on the engine's device.
    let mut s = GpuSampler::new(&ctx, SamplerConfig::new(1, 100)).unwrap();
    s.set_params(
        0,
        &SamplingParams {
            temperature: 0.0,
            ..Default::default()
        },
    )
    .unwrap();
    let mut row = vec![0.0f32; 100];
    row[42] = 5.0;
    let out = s.sample_host(Logits::F32(&row), 1).unwrap();
    assert_eq!(out[0].token, 42);
}

#[test]
fn features_the_adapter_lacks_are_an_error_naming_them() {
    // No adapter offers every feature wgpu knows.
    let e = open_device_with(DeviceFeatures::Exactly(wgpu::Features::all())).unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)), "{e:?}");
    assert!(
        e.to_string().contains("lacks the requested features"),
        "{e}"
    );
}
