//! kad on an ESP32-C3: Wi-Fi station (esp-radio on esp-rtos), DHCP, then a DHT node that joins
//! through `KAD_BOOTSTRAP`, serves other nodes on UDP 8468 and puts a value every minute.
//!
//! ```sh
//! KAD_WIFI_SSID=home KAD_WIFI_PASSWORD=secret KAD_BOOTSTRAP=192.168.1.10:8468 cargo run --release
//! kad get --bootstrap 192.168.1.10:8468 esp32c3      # on the PC running `kad node --bind 0.0.0.0`
//! ```
//!
//! Built with `--no-default-features`, the same firmware without the DHT (Wi-Fi and DHCP only):
//! the difference in flash and RAM is what the DHT costs. Wi-Fi needs a heap (esp-alloc); the DHT
//! does not use it.
#![no_std]
#![no_main]

use defmt::{info, unwrap, warn};
use embassy_executor::Spawner;
use embassy_net::StackResources;
use embassy_time::{Duration, Timer};
use esp_hal::clock::CpuClock;
use esp_hal::rng::Rng;
use esp_hal::timer::timg::TimerGroup;
use esp_radio::wifi::sta::StationConfig;
use esp_radio::wifi::{
    AuthenticationMethodConfig, Config as WifiConfig, ControllerConfig, Interface, WifiController,
};
use static_cell::StaticCell;
use {esp_backtrace as _, esp_println as _};

esp_bootloader_esp_idf::esp_app_desc!();

const SSID: &str = env!("KAD_WIFI_SSID");
const PASSWORD: &str = env!("KAD_WIFI_PASSWORD");

/// Sockets: DHCP, plus the DHT's UDP socket.
const SOCKETS: usize = if cfg!(feature = "dht") { 2 } else { 1 };

#[embassy_executor::task]
async fn net_task(mut runner: embassy_net::Runner<'static, Interface>) -> ! {
    runner.run().await
}

/// Keeps the station connected: connects, waits for a disconnection, tries again.
#[embassy_executor::task]
async fn wifi_task(mut controller: WifiController<'static>) -> ! {
    loop {
        match controller.connect_async().await {
            Ok(_) => {
                info!("Wi-Fi: connected to {}", SSID);
                let _ = controller.wait_for_disconnect_async().await;
                warn!("Wi-Fi: disconnected");
            }
            Err(e) => warn!("Wi-Fi: cannot connect to {}: {}", SSID, e),
        }
        Timer::after(Duration::from_secs(5)).await;
    }
}

#[esp_rtos::main]
async fn main(spawner: Spawner) -> ! {
    let peripherals = esp_hal::init(esp_hal::Config::default().with_cpu_clock(CpuClock::max()));
    // The Wi-Fi driver allocates; the DHT does not.
    esp_alloc::heap_allocator!(#[esp_hal::ram(reclaimed)] size: 64 * 1024);
    esp_alloc::heap_allocator!(size: 32 * 1024);
    let timg0 = TimerGroup::new(peripherals.TIMG0);
    esp_rtos::start(timg0.timer0, peripherals.FROM_CPU_INTR0);
    info!("kad on ESP32-C3");

    let auth = if PASSWORD.is_empty() {
        AuthenticationMethodConfig::Open
    } else {
        AuthenticationMethodConfig::WpaWpa2Personal(unwrap!(PASSWORD.try_into()))
    };
    let station = StationConfig::default().with_ssid(unwrap!(SSID.try_into())).with_authentication(auth);
    let config = ControllerConfig::default().with_initial_config(WifiConfig::Station(station));
    let controller = unwrap!(WifiController::new(peripherals.WIFI, config));
    let device = Interface::station();

    // With the radio on, the RNG draws from a true entropy source.
    let rng = Rng::new();
    let mut seed = [0u8; 32];
    for chunk in seed.chunks_mut(4) {
        chunk.copy_from_slice(&rng.random().to_le_bytes());
    }

    static RESOURCES: StaticCell<StackResources<SOCKETS>> = StaticCell::new();
    let net_seed =
        u64::from_le_bytes([seed[0], seed[1], seed[2], seed[3], seed[4], seed[5], seed[6], seed[7]]);
    let (stack, runner) = embassy_net::new(
        device,
        embassy_net::Config::dhcpv4(Default::default()),
        RESOURCES.init(StackResources::new()),
        net_seed,
    );
    spawner.spawn(unwrap!(wifi_task(controller)));
    spawner.spawn(unwrap!(net_task(runner)));

    stack.wait_config_up().await;
    if let Some(c) = stack.config_v4() {
        info!("DHCP: address {}", c.address);
    }

    #[cfg(feature = "dht")]
    dht::start(spawner, stack, seed).await;
    #[cfg(not(feature = "dht"))]
    loop {
        Timer::after(Duration::from_secs(60)).await;
    }
}

#[cfg(feature = "dht")]
mod dht {
    use defmt::{info, unwrap, warn};
    use embassy_executor::Spawner;
    use embassy_net::Stack;
    use embassy_time::{Duration, Timer};
    use kad_core::{Config, PeerAddr};
    use kad_embedded::embedded::{self as kad, Node, Runner, Shared};
    use kad_embedded::SocketBuffers;
    use static_cell::StaticCell;

    /// UDP port of the node.
    const PORT: u16 = 8468;
    /// The key this board publishes under (`kad get --bootstrap HOST:PORT esp32c3`).
    const KEY: &str = "esp32c3";

    static NODE: StaticCell<Node> = StaticCell::new();
    static BUFFERS: StaticCell<SocketBuffers> = StaticCell::new();
    static SHARED: Shared = Shared::new();

    #[embassy_executor::task]
    async fn dht_task(runner: Runner<'static>) -> ! {
        runner.run().await
    }

    /// `a.b.c.d:port` at compile time, from `KAD_BOOTSTRAP` (see `.cargo/config.toml`).
    fn bootstrap_addr() -> Option<PeerAddr> {
        let addr: core::net::SocketAddrV4 = env!("KAD_BOOTSTRAP").parse().ok()?;
        Some(PeerAddr::V4(addr.ip().octets(), addr.port()))
    }

    pub async fn start(spawner: Spawner, stack: Stack<'static>, seed: [u8; 32]) -> ! {
        let bootstrap = bootstrap_addr();
        if bootstrap.is_none() {
            warn!("KAD_BOOTSTRAP {} is not A.B.C.D:PORT; waiting for others to join", env!("KAD_BOOTSTRAP"));
        }
        let node = NODE.init_with(|| kad::node(seed, Config::default()));
        let runner = unwrap!(Runner::new(
            stack,
            BUFFERS.init(SocketBuffers::new()),
            node,
            &SHARED,
            PORT,
            bootstrap.as_slice(),
        ));
        spawner.spawn(unwrap!(dht_task(runner)));

        let dht = SHARED.dht();
        let mut n: u32 = 0;
        loop {
            Timer::after(Duration::from_secs(if n == 0 { 5 } else { 60 })).await;
            n = n.wrapping_add(1);
            let mut value = heapless::String::<48>::new();
            let _ = core::fmt::write(&mut value, format_args!("hello from an ESP32-C3, put #{n}"));
            match dht.put(KEY, value.as_str()).await {
                Ok(a) => info!("put {}: stored on {} of {} peers", KEY, a.stored, a.tried),
                Err(e) => warn!("put {} failed: {}", KEY, e),
            }
        }
    }
}
