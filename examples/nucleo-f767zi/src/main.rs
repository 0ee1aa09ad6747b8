//! kad on a NUCLEO-F767ZI: Ethernet (RMII, LAN8742A), DHCP, then a DHT node that joins through
//! `KAD_BOOTSTRAP`, serves other nodes on UDP 8468 and puts a value every minute.
//!
//! ```sh
//! KAD_BOOTSTRAP=192.168.1.10:8468 cargo run --release     # flashes with probe-rs, prints defmt logs
//! kad get --bootstrap 192.168.1.10:8468 nucleo-f767zi      # on the PC running `kad node --bind 0.0.0.0`
//! ```
//!
//! Built with `--no-default-features`, the same firmware without the DHT (DHCP only): the
//! difference in flash and RAM is what the DHT costs.
#![no_std]
#![no_main]

use defmt::{info, unwrap};
use embassy_executor::Spawner;
use embassy_net::StackResources;
use embassy_stm32::eth::{Ethernet, GenericPhy, PacketQueue, Sma};
use embassy_stm32::peripherals::{ETH, ETH_SMA};
use embassy_stm32::rng::Rng;
use embassy_stm32::time::Hertz;
use embassy_stm32::{bind_interrupts, eth, peripherals, rng, Config};
use static_cell::StaticCell;
use {defmt_rtt as _, panic_probe as _};

bind_interrupts!(struct Irqs {
    ETH => eth::InterruptHandler;
    RNG => rng::InterruptHandler<peripherals::RNG>;
});

type Device = Ethernet<'static, ETH, GenericPhy<Sma<'static, ETH_SMA>>>;

/// Sockets: DHCP, plus the DHT's UDP socket.
const SOCKETS: usize = if cfg!(feature = "dht") { 2 } else { 1 };

#[embassy_executor::task]
async fn net_task(mut runner: embassy_net::Runner<'static, Device>) -> ! {
    runner.run().await
}

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    let mut config = Config::default();
    {
        use embassy_stm32::rcc::*;
        // 8 MHz from the ST-LINK's MCO, 216 MHz system clock.
        config.rcc.hse = Some(Hse { freq: Hertz(8_000_000), mode: HseMode::Bypass });
        config.rcc.pll_src = PllSource::HSE;
        config.rcc.pll = Some(Pll {
            prediv: PllPreDiv::DIV4,
            mul: PllMul::MUL216,
            divp: Some(PllPDiv::DIV2),
            divq: None,
            divr: None,
        });
        config.rcc.ahb_pre = AHBPrescaler::DIV1;
        config.rcc.apb1_pre = APBPrescaler::DIV4;
        config.rcc.apb2_pre = APBPrescaler::DIV2;
        config.rcc.sys = Sysclk::PLL1_P;
    }
    let p = embassy_stm32::init(config);
    info!("kad on NUCLEO-F767ZI");

    let mut rng = Rng::new(p.RNG, Irqs);
    let mut seed = [0u8; 32];
    rng.fill_bytes(&mut seed);

    // A locally administered MAC address from the chip's unique id.
    let uid = embassy_stm32::uid::uid();
    let mac = [0x02, uid[0], uid[1], uid[2], uid[3], uid[4]];
    static PACKETS: StaticCell<PacketQueue<4, 4>> = StaticCell::new();
    let device = Ethernet::new(
        PACKETS.init(PacketQueue::<4, 4>::new()),
        p.ETH,
        Irqs,
        p.PA1,
        p.PA7,
        p.PC4,
        p.PC5,
        p.PG13,
        p.PB13,
        p.PG11,
        mac,
        p.ETH_SMA,
        p.PA2,
        p.PC1,
    );

    let config = embassy_net::Config::dhcpv4(Default::default());
    static RESOURCES: StaticCell<StackResources<SOCKETS>> = StaticCell::new();
    let net_seed =
        u64::from_le_bytes([seed[0], seed[1], seed[2], seed[3], seed[4], seed[5], seed[6], seed[7]]);
    let (stack, runner) = embassy_net::new(device, config, RESOURCES.init(StackResources::new()), net_seed);
    spawner.spawn(unwrap!(net_task(runner)));

    stack.wait_config_up().await;
    if let Some(c) = stack.config_v4() {
        info!("DHCP: address {}", c.address);
    }

    #[cfg(feature = "dht")]
    dht::start(spawner, stack, seed).await;
    #[cfg(not(feature = "dht"))]
    loop {
        embassy_time::Timer::after(embassy_time::Duration::from_secs(60)).await;
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
    /// The key this board publishes under (`kad get --bootstrap HOST:PORT nucleo-f767zi`).
    const KEY: &str = "nucleo-f767zi";

    static NODE: StaticCell<Node> = StaticCell::new();
    static BUFFERS: StaticCell<SocketBuffers> = StaticCell::new();
    static SHARED: Shared = Shared::new();

    #[embassy_executor::task]
    async fn dht_task(runner: Runner<'static>) -> ! {
        runner.run().await
    }

    /// `a.b.c.d:port` at compile time, from `KAD_BOOTSTRAP` (see `.cargo/config.toml`).
    fn bootstrap_addr() -> Option<PeerAddr> {
        let s = env!("KAD_BOOTSTRAP");
        let addr: core::net::SocketAddrV4 = s.parse().ok()?;
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
            let _ = core::fmt::write(&mut value, format_args!("hello from a NUCLEO-F767ZI, put #{n}"));
            match dht.put(KEY, value.as_str()).await {
                Ok(a) => info!("put {}: stored on {} of {} peers", KEY, a.stored, a.tried),
                Err(e) => warn!("put {} failed: {}", KEY, e),
            }
        }
    }
}
